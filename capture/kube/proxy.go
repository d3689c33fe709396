// Package kube is the Kubernetes API capture surface: a reverse proxy in
// front of one cluster's API server that records one k8s-proxy event per
// request, with the verb, resource and namespace the API server authorizes
// it by.
//
// Agents present a proxy credential (a bearer token mapped to an actor in
// Identities); the proxy forwards with the upstream credential it is
// configured with and never passes the agent's on, so agents hold no
// cluster credentials. Impersonate-* headers would act under that
// credential, so they are refused unless the identity map lets the agent
// impersonate (capture.Actor.Impersonate); then they are forwarded, for the
// cluster's RBAC to allow or refuse, and recorded.
//
// The path is normalised before anything is derived from it, and the
// normalised path is what goes upstream: a request whose path has dot
// segments and normalises out of /api or /apis is refused.
//
// Watches, exec/attach/port-forward and followed logs are long-running: they
// stream through, flushed as bytes arrive, and are recorded once, when they
// end, with their full duration.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// Config configures a Proxy. Upstream, Cluster and Recorder are required.
type Config struct {
	// Upstream is the API server's base URL, e.g. https://10.0.0.1:6443.
	Upstream *url.URL
	// Cluster names the cluster in every event.
	Cluster string
	// UpstreamToken, when set, is the bearer token sent upstream in place of
	// the agent's credential. When empty the agent's Authorization header
	// is removed and Transport must authenticate (client certificates, or a
	// kubeconfig's round tripper that adds its own token).
	UpstreamToken string
	// Transport sends requests upstream; nil means a clone of
	// http.DefaultTransport (system roots, HTTP/2).
	Transport http.RoundTripper
	// Recorder takes the events, redacted.
	Recorder capture.Recorder
	// Identities resolve the actor from the bearer token the agent presents.
	// Only mapped tokens are let through unless Identities.AllowUnmapped is
	// set; then other requests are recorded as the X-Agenttrail-Actor-Id
	// header's actor or Identities.Default. Anyone who can reach the proxy
	// then acts with the upstream credential, so that suits only a proxy
	// reachable by its agent alone. New refuses Identities that map no
	// token without AllowUnmapped.
	Identities *capture.Identities
	// Redactor scrubs every event; nil means the built-in rules
	// (redact.Builtin).
	Redactor *redact.Redactor
	// Logger logs upstream failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Proxy is the Kubernetes API reverse proxy, an http.Handler. It is safe for
// concurrent use. Long-running requests end with the server serving it (or
// their clients); Close then releases idle upstream connections.
type Proxy struct {
	upstream  *url.URL
	cluster   string
	token     string
	rec       capture.Recorder // redacting
	ids       *capture.Identities
	log       *slog.Logger
	now       func() time.Time
	transport http.RoundTripper
	rp        *httputil.ReverseProxy
}

var _ http.Handler = (*Proxy)(nil)

// New returns a Proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	if cfg.Upstream == nil || cfg.Upstream.Scheme == "" || cfg.Upstream.Host == "" {
		return nil, errors.New("kube proxy: an absolute upstream URL is required")
	}
	if cfg.Cluster == "" {
		return nil, errors.New("kube proxy: a cluster name is required")
	}
	if cfg.Recorder == nil {
		return nil, errors.New("kube proxy: a recorder is required")
	}
	p := &Proxy{
		upstream:  cfg.Upstream,
		cluster:   cfg.Cluster,
		token:     cfg.UpstreamToken,
		rec:       capture.NewRedacting(cfg.Recorder, cfg.Redactor),
		ids:       cfg.Identities,
		log:       cfg.Logger,
		now:       cfg.Now,
		transport: cfg.Transport,
	}
	if p.ids == nil || (!p.ids.Mapped() && !p.ids.AllowUnmapped) {
		return nil, errors.New("kube proxy: map the tokens agents present in Identities, or set Identities.AllowUnmapped")
	}
	defaults.Logger(&p.log)
	defaults.Clock(&p.now)
	if p.transport == nil {
		p.transport = capture.Transport(64)
	}
	p.rp = capture.ReverseProxy(httputil.ReverseProxy{
		Rewrite: p.rewrite, Transport: p.transport, ModifyResponse: p.modifyResponse, ErrorHandler: p.upstreamError,
		FlushInterval: -1, // watch events and log lines go out as they arrive
	}, p.log)
	return p, nil
}

// exchange is one proxied request, filled in as it goes and recorded when
// it ends.
type exchange struct {
	start  time.Time
	actor  capture.Actor
	span   capture.Span
	info   RequestInfo
	path   string // normalised
	status int
	broken bool   // the proxy failed: the upstream is unreachable
	denied string // why the proxy itself refused the request
	errMsg string
	// reason and message are the upstream's metav1.Status of a refusal.
	reason, message string
}

type exchangeKey struct{}

// ServeHTTP forwards one request to the API server and records it when the
// response, however long it streams, has ended.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{start: p.now(), span: capture.SpanFromRequest(r.Header)}
	clean, inAPI := normalisePath(r.URL.Path)
	if clean != r.URL.Path {
		r.URL.Path, r.URL.RawPath = clean, ""
	}
	x.path = clean
	x.info = ParseRequestInfo(r.Method, r.URL)
	a, admitted := p.ids.Admit(bearer(r.Header.Get("Authorization")), r.Header)
	if a.ID == "" {
		a.ID = "anonymous"
	}
	x.actor = a
	imp := impersonation(r.Header)
	defer func() { p.record(r, x, imp) }()

	switch {
	case !admitted:
		x.status, x.denied = http.StatusUnauthorized, "the proxy does not know the presented credential"
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "agenttrail kube proxy: unknown or missing proxy credential")
		return
	case !inAPI:
		x.status, x.denied = http.StatusBadRequest, "the path normalises out of /api and /apis"
		writeStatus(w, http.StatusBadRequest, "BadRequest", "agenttrail kube proxy: the path normalises out of /api and /apis")
		return
	case imp != nil && !a.Impersonate:
		x.status, x.denied = http.StatusForbidden, "impersonation is not allowed for "+a.ID+" by the proxy's identity map"
		writeStatus(w, http.StatusForbidden, "Forbidden", "agenttrail kube proxy: this credential may not impersonate (Impersonate-* headers)")
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	p.rp.ServeHTTP(w, r)
}

// normalisePath returns p with dot segments and repeated slashes resolved,
// the way the API server will read it, and whether p may be served: a path
// that needed normalising must stay inside /api or /apis, so that
// /api/v1/../../version cannot pass for a pods request, nor reach what the
// path claims not to.
func normalisePath(p string) (string, bool) {
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	if c == p {
		return p, true
	}
	for _, prefix := range []string{"/api", "/apis"} {
		if c == prefix || strings.HasPrefix(c, prefix+"/") {
			return c, true
		}
	}
	return c, false
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.upstream)
	h := pr.Out.Header
	h.Del("Authorization")
	h.Del(capture.HeaderActorID)
	if x, ok := pr.In.Context().Value(exchangeKey{}).(*exchange); ok {
		x.span.Forward(h)
	}
	if p.token != "" {
		h.Set("Authorization", "Bearer "+p.token)
	}
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	if x, ok := resp.Request.Context().Value(exchangeKey{}).(*exchange); ok {
		x.status = resp.StatusCode
		if resp.StatusCode >= 400 {
			x.reason, x.message = peekStatus(resp)
		}
	}
	return nil
}

// maxStatusBytes bounds how much of a refusal's body is read to find its
// metav1.Status; the API server's are a few hundred bytes.
const maxStatusBytes = 64 << 10

// peekStatus returns the reason and message of the metav1.Status a refusal
// carries as JSON, leaving the body for the client as it was. Other bodies
// (protobuf, HTML from something in front of the API server) give "", "".
func peekStatus(resp *http.Response) (reason, message string) {
	if !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return "", ""
	}
	head, err := capture.PeekBody(resp, maxStatusBytes)
	if err != nil {
		return "", ""
	}
	var st struct {
		Kind    string `json:"kind"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if json.Unmarshal(head, &st) != nil || st.Kind != "Status" {
		return "", ""
	}
	return st.Reason, st.Message
}

// upstreamError answers 502 when the API server cannot be reached; the
// request is recorded as an error of the proxy, not a refusal.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if errors.Is(r.Context().Err(), context.Canceled) {
		// The client went away, the usual end of a watch it stopped;
		// what was streamed so far is its record.
		if x != nil && x.status == 0 {
			x.status = 499
			x.errMsg = "client closed the request"
		}
		return
	}
	p.log.Warn("kube proxy: upstream request failed", "cluster", p.cluster, "path", r.URL.Path, "err", err)
	if x != nil {
		x.broken = true
		x.status = http.StatusBadGateway
		x.errMsg = "upstream unreachable: " + err.Error()
	}
	writeStatus(w, http.StatusBadGateway, "ServiceUnavailable", "agenttrail kube proxy: the API server cannot be reached")
}

// Close releases the idle connections to the API server.
func (p *Proxy) Close() error {
	if t, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return nil
}

// writeStatus writes a metav1.Status, which kubectl and client-go turn
// into a readable error.
func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code,
	})
}

func bearer(v string) string {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(rest)
}
