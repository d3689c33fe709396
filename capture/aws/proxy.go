// Package aws is the AWS API capture surface: a proxy agents reach through
// AWS_ENDPOINT_URL that records one aws-proxy event per API call, with the
// service, operation, region and resource.
//
// Agents hold only proxy-issued access keys. The proxy verifies each
// request's Signature Version 4 with the proxy-issued secret, drops the
// agent's signature, signs the request again with the real credentials the
// key maps to, and forwards it to the service's regional endpoint. A request
// with an unknown key or a bad signature is refused with the error AWS would
// answer and recorded as denied, so real credentials never leave the proxy
// and agents cannot act without being recorded.
//
// Agents address S3 path-style (UsePathStyle / AWS_S3_FORCE_PATH_STYLE, or
// an IP address as the endpoint, which SDKs address path-style): the proxy
// has one host name. It forwards to AWS virtual-hosted-style where the
// bucket name allows.
// Bodies whose hash the client declares (X-Amz-Content-Sha256, UNSIGNED-
// PAYLOAD) stream through; others are read to hash them, up to a limit.
// Chunk-signed uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and presigned
// URLs are refused.
package aws

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// Config configures a Proxy. Credentials and Recorder are required.
type Config struct {
	// Credentials maps each proxy-issued access key id to its Credential.
	// The proxy keeps the map; it must not be changed afterwards.
	Credentials map[string]Credential
	// Upstream, when set, receives every request instead of
	// https://{service}.{region}.amazonaws.com: a VPC endpoint, a local
	// emulator, or a test server.
	Upstream *url.URL
	// Default fills the org, project and actor type a credential's actor
	// leaves empty, and is the actor of requests refused for an unknown key
	// (ID "anonymous" when empty).
	Default capture.Actor
	// Recorder takes the events, redacted.
	Recorder capture.Recorder
	// Redactor scrubs every event; nil means the built-in rules
	// (redact.Builtin).
	Redactor *redact.Redactor
	// MaxClockSkew is how far a request's signing time may be from the
	// proxy's clock (default 15 minutes, as AWS allows), which bounds how
	// long a captured request can be replayed.
	MaxClockSkew time.Duration
	// MaxBody bounds a body the proxy must read to hash (default 64 MiB).
	MaxBody int64
	// Transport sends requests upstream; nil means a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Logger logs upstream failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Proxy is the AWS API proxy, an http.Handler. It is safe for concurrent
// use; Close releases its idle upstream connections.
type Proxy struct {
	creds     map[string]Credential
	upstream  *url.URL
	def       capture.Actor
	rec       capture.Recorder // redacting
	skew      time.Duration
	maxBody   int64
	transport http.RoundTripper
	log       *slog.Logger
	now       func() time.Time
	signer    *v4.Signer
	rp        *httputil.ReverseProxy
}

var _ http.Handler = (*Proxy)(nil)

// New returns a Proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	if err := checkCredentials(cfg.Credentials); err != nil {
		return nil, fmt.Errorf("aws proxy: %w", err)
	}
	if cfg.Recorder == nil {
		return nil, errors.New("aws proxy: a recorder is required")
	}
	if cfg.Upstream != nil && (cfg.Upstream.Scheme == "" || cfg.Upstream.Host == "") {
		return nil, errors.New("aws proxy: the upstream must be an absolute URL")
	}
	p := &Proxy{
		creds: cfg.Credentials, upstream: cfg.Upstream, def: cfg.Default,
		rec: capture.NewRedacting(cfg.Recorder, cfg.Redactor), skew: cfg.MaxClockSkew, maxBody: cfg.MaxBody,
		transport: cfg.Transport, log: cfg.Logger, now: cfg.Now, signer: v4.NewSigner(),
	}
	if p.def.ID == "" {
		p.def.ID = "anonymous"
	}
	defaults.Positive(&p.skew, 15*time.Minute)
	defaults.Positive(&p.maxBody, 64<<20)
	if p.transport == nil {
		p.transport = capture.Transport(64)
	}
	defaults.Logger(&p.log)
	defaults.Clock(&p.now)
	p.rp = capture.ReverseProxy(httputil.ReverseProxy{
		Rewrite: p.rewrite, Transport: p.transport, ModifyResponse: p.modifyResponse, ErrorHandler: p.upstreamError,
		FlushInterval: -1,
	}, p.log)
	return p, nil
}

// exchange is one API call, filled in as it goes and recorded when it ends.
type exchange struct {
	start       time.Time
	actor       capture.Actor
	span        capture.Span
	accessKeyID string
	known       bool // accessKeyID is one the proxy issued
	tags        map[string]string
	service     string
	region      string
	call        call
	target      *url.URL
	upstream    UpstreamCredential
	payloadHash string
	status      int
	errorCode   string
	errorMsg    string // the service's message, or the proxy's refusal
	refused     bool   // the proxy refused the call itself
	broken      bool
	errMsg      string
}

type exchangeKey struct{}

// ServeHTTP verifies, re-signs and forwards one API call, and records it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{start: p.now(), actor: p.def, span: capture.SpanFromRequest(r.Header)}
	defer func() { p.record(r, x) }()

	auth, err := parseAuthorization(r.Header.Get("Authorization"))
	x.service, x.region, x.accessKeyID = auth.Service, auth.Region, auth.AccessKeyID
	proto := protocolOf(r, auth.Service)
	codes := codesFor(proto)
	if err != nil {
		p.refuse(w, r, x, proto, http.StatusForbidden, codes.missingAuth, err.Error())
		return
	}
	cred, ok := p.creds[auth.AccessKeyID]
	if !ok {
		p.refuse(w, r, x, proto, http.StatusForbidden, codes.unknownKey, "The security token included in the request is invalid.")
		return
	}
	x.known = true

	at, err := signingTime(r, auth)
	if err != nil {
		p.refuse(w, r, x, proto, http.StatusForbidden, codes.badSignature, err.Error())
		return
	}
	if d := p.now().Sub(at); d > p.skew || d < -p.skew {
		p.refuse(w, r, x, proto, http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
		return
	}
	body, hash, err := p.payload(r, auth.Service)
	if err != nil {
		status, code := http.StatusBadRequest, "InvalidRequest"
		if errors.Is(err, errTooLarge) {
			status, code = http.StatusRequestEntityTooLarge, "RequestEntityTooLarge"
		}
		p.refuse(w, r, x, proto, status, code, err.Error())
		return
	}
	x.payloadHash = hash
	if !verify(r.Context(), p.signer, r, auth, cred.SecretAccessKey, hash, at) {
		p.refuse(w, r, x, proto, http.StatusForbidden, codes.badSignature,
			"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		return
	}
	// Only a verified signature attributes the call to the key's actor:
	// anyone may send a request naming a key id.
	x.actor, x.tags, x.upstream = cred.Actor.Or(p.def), cred.SessionTags, cred.Upstream
	x.call = identify(r, auth.Service, auth.Region, x.upstream.AccountID, body)
	if x.target, err = p.endpoint(auth.Service, auth.Region); err != nil {
		p.refuse(w, r, x, proto, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	p.rp.ServeHTTP(w, r)
}

// refuse answers a request the proxy will not forward. Its operation is
// still recorded, as far as the URL and headers tell it.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, x *exchange, proto protocol, status int, code, msg string) {
	x.status, x.errorCode, x.errorMsg, x.refused = status, code, msg, true
	var body []byte
	if x.service != "s3" && r.ContentLength > 0 && r.ContentLength <= maxErrorBody {
		// A small query or JSON body names the operation refused.
		body, _ = io.ReadAll(io.LimitReader(r.Body, maxErrorBody))
	}
	x.call = identify(r, x.service, x.region, "", body)
	writeError(w, proto, status, code, msg, requestID())
}

var errTooLarge = errors.New("the request body is too large for the proxy to hash")

// payload returns the hash the request was signed over, reading (and
// putting back) the body when the client did not declare its hash, and for
// every service but S3, whose bodies the operation or resource is read
// from.
func (p *Proxy) payload(r *http.Request, service string) (body []byte, hash string, err error) {
	declared := r.Header.Get("X-Amz-Content-Sha256")
	if strings.HasPrefix(declared, "STREAMING-") && declared != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
		return nil, "", errors.New("chunk-signed uploads (" + declared + ") are not supported by the proxy; use UNSIGNED-PAYLOAD or a payload hash")
	}
	if declared != "" && service == "s3" {
		return nil, declared, nil
	}
	if r.ContentLength > p.maxBody {
		return nil, "", errTooLarge
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, p.maxBody+1))
	if err != nil {
		return nil, "", fmt.Errorf("read the request body: %w", err)
	}
	if int64(len(body)) > p.maxBody {
		return nil, "", errTooLarge
	}
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if declared != "" {
		return body, declared, nil
	}
	sum := sha256.Sum256(body)
	return body, hex.EncodeToString(sum[:]), nil
}

// rewrite drops the agent's signature and signs the request with the real
// credentials.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	pr.SetURL(x.target)
	pr.Out.Host = ""
	if x.service == "s3" && p.upstream == nil {
		virtualHost(pr.Out.URL)
	}
	h := pr.Out.Header
	for _, k := range []string{"Authorization", "X-Amz-Security-Token", "X-Amz-Date", capture.HeaderActorID} {
		h.Del(k)
	}
	x.span.Forward(h) // before signing: the signature covers traceparent
	creds := sdkaws.Credentials{AccessKeyID: x.upstream.AccessKeyID, SecretAccessKey: x.upstream.SecretAccessKey, SessionToken: x.upstream.SessionToken}
	if err := p.signer.SignHTTP(pr.Out.Context(), creds, pr.Out, x.payloadHash, x.service, x.region, p.now(), signerOptions(x.service)); err != nil {
		// The signer fails on nothing it is given here; an unsigned request
		// is refused upstream and recorded with its status.
		p.log.Error("aws proxy: sign", "err", err)
	}
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	x, ok := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	if !ok {
		return nil
	}
	x.status = resp.StatusCode
	if resp.StatusCode >= 400 {
		x.errorCode, x.errorMsg = errorOf(resp)
		if x.errorCode == "" && resp.Request.Method == http.MethodHead {
			// HEAD errors have no body; SDKs name them after the status.
			x.errorCode = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
		}
	}
	return nil
}

// upstreamError answers 502 when the service cannot be reached.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if errors.Is(r.Context().Err(), context.Canceled) {
		if x != nil && x.status == 0 {
			x.status, x.errMsg = 499, "client closed the request"
		}
		return
	}
	p.log.Warn("aws proxy: upstream request failed", "service", x.service, "region", x.region, "err", err)
	x.broken, x.status, x.errMsg = true, http.StatusBadGateway, "upstream unreachable: "+err.Error()
	writeError(w, protocolOf(r, x.service), http.StatusBadGateway, "ServiceUnavailable", "agenttrail aws proxy: the service cannot be reached", requestID())
}

// Close releases the idle connections to the services.
func (p *Proxy) Close() error {
	if t, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return nil
}

func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
