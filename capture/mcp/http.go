package mcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/agenttrail/agenttrail/capture"
)

// HeaderSessionID is the Streamable HTTP session header. The proxy passes
// it (and MCP-Protocol-Version) through both ways and keys sessions on it.
const HeaderSessionID = "Mcp-Session-Id"

// HTTPProxy is a reverse proxy in front of one Streamable HTTP MCP server
// (Config.Upstream). It relays POST (with JSON or event-stream responses,
// flushed as each event arrives), GET event streams and DELETE unchanged,
// except that it removes the X-Agenttrail-Actor-Id header, and records the
// JSON-RPC traffic. Every request, whatever its path, goes to the upstream
// URL: the proxy is one MCP endpoint. The agent is resolved from the bearer
// token, which is forwarded, since the server may check it too.
//
// An HTTPProxy is an http.Handler safe for concurrent use. Close records the
// requests still waiting for a response once the server using it has shut
// down.
type HTTPProxy struct {
	obs      *observer
	upstream *url.URL
	rp       *httputil.ReverseProxy
}

// exchange is one HTTP request through the proxy; it is used by the
// goroutine serving that request only.
type exchange struct {
	sess      *session
	sessionID string // the Mcp-Session-Id the client sent
	adopted   bool   // the response assigned the session its id
	agent     capture.Actor
	span      capture.Span // of this HTTP request, forwarded
	keys      []callKey    // the requests a POST carried
	status    int
	sse       *sseObserver
	json      *jsonObserver
	failed    error // the upstream could not be reached
}

// unread reports whether a response on the exchange was too large to
// observe.
func (ex *exchange) unread() bool {
	return (ex.sse != nil && ex.sse.skipped > 0) || (ex.json != nil && ex.json.over && !ex.json.observed)
}

type exchangeKey struct{}

// NewHTTP returns an HTTPProxy for cfg.Upstream. It fails when cfg lacks its
// Recorder or Identities, or Upstream is not an http(s) URL.
func NewHTTP(cfg Config) (*HTTPProxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mcp proxy: upstream %q is not an http(s) URL", cfg.Upstream)
	}
	if cfg.Transport == nil {
		cfg.Transport = capture.Transport(64) // one agent keeps several POSTs and a GET stream open
	}
	p := &HTTPProxy{obs: newObserver(cfg, "http"), upstream: u}
	p.rp = capture.ReverseProxy(httputil.ReverseProxy{
		Rewrite: p.rewrite, Transport: cfg.Transport, ModifyResponse: p.modifyResponse, ErrorHandler: p.upstreamFailed,
	}, cfg.Logger)
	return p, nil
}

// ServeHTTP implements http.Handler.
func (p *HTTPProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := &p.obs.cfg
	agent, admitted := cfg.Identities.Admit(bearer(r.Header), r.Header)
	ex := &exchange{sessionID: r.Header.Get(HeaderSessionID), agent: agent, span: capture.SpanFromRequest(r.Header)}
	ex.sess = p.obs.session(ex.sessionID)
	if r.Method == http.MethodPost && mediaType(r.Header.Get("Content-Type")) == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, cfg.MaxBodyBytes+1))
		if err != nil {
			http.Error(w, "mcp proxy: read request body", http.StatusBadRequest)
			return
		}
		if int64(len(body)) <= cfg.MaxBodyBytes {
			ex.keys = p.obs.observe(ex.sess, false, body, ex.agent, 0, ex.span)
			r.Body = io.NopCloser(bytes.NewReader(body))
		} else {
			cfg.Logger.Warn("mcp proxy: request body too large to observe", "limit", cfg.MaxBodyBytes)
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		}
	}
	if !admitted {
		// Once credentials are mapped, only they get through; the calls
		// the request carried are recorded as refused (denied).
		p.obs.abandon(ex.sess, ex.keys, http.StatusUnauthorized, "refused by the proxy: the presented credential is not mapped")
		w.Header().Set("WWW-Authenticate", `Bearer realm="agenttrail"`)
		http.Error(w, "mcp proxy: unknown or missing credential", http.StatusUnauthorized)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
	p.finish(r, ex)
}

func (p *HTTPProxy) rewrite(pr *httputil.ProxyRequest) {
	u := pr.Out.URL
	u.Scheme, u.Host = p.upstream.Scheme, p.upstream.Host
	u.Path, u.RawPath = p.upstream.Path, p.upstream.RawPath
	switch {
	case u.RawQuery == "":
		u.RawQuery = p.upstream.RawQuery
	case p.upstream.RawQuery != "":
		u.RawQuery = p.upstream.RawQuery + "&" + u.RawQuery
	}
	pr.Out.Host = ""
	pr.Out.Header.Del(capture.HeaderActorID)
	if ex, ok := pr.In.Context().Value(exchangeKey{}).(*exchange); ok {
		ex.span.Forward(pr.Out.Header)
	}
}

// modifyResponse notes the session the server assigned and wraps the body
// so the proxy observes each message as it passes.
func (p *HTTPProxy) modifyResponse(resp *http.Response) error {
	ex, _ := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		return nil
	}
	ex.status = resp.StatusCode
	if id := resp.Header.Get(HeaderSessionID); id != "" && ex.sessionID == "" {
		p.obs.adopt(ex.sess, id)
		ex.adopted = true
	}
	limit := p.obs.cfg.MaxBodyBytes
	onMessage := func(b []byte) { p.obs.observe(ex.sess, true, b, ex.agent, ex.status, capture.Span{}) }
	switch mediaType(resp.Header.Get("Content-Type")) {
	case "text/event-stream":
		ex.sse = newSSEObserver(resp.Body, int(min(limit, 1<<30)), onMessage)
		resp.Body = ex.sse
	case "application/json":
		ex.json = &jsonObserver{rc: resp.Body, limit: limit, onEOF: onMessage}
		resp.Body = ex.json
	}
	return nil
}

func (p *HTTPProxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if ex, _ := r.Context().Value(exchangeKey{}).(*exchange); ex != nil {
		ex.failed, ex.status = err, http.StatusBadGateway
	}
	if !errors.Is(err, context.Canceled) {
		p.obs.cfg.Logger.Warn("mcp proxy: upstream failed", "method", r.Method, "err", err)
	}
	w.WriteHeader(http.StatusBadGateway)
}

// finish closes what the exchange leaves open: a deleted or vanished
// session, and requests whose response did not come back on it.
func (p *HTTPProxy) finish(r *http.Request, ex *exchange) {
	switch {
	case ex.sessionID == "":
	case r.Method == http.MethodDelete && ex.status/100 == 2:
		p.obs.endID(ex.sessionID, "the session was deleted")
	case ex.status == http.StatusNotFound:
		p.obs.endID(ex.sessionID, "the server no longer knows the session")
	}
	if len(ex.keys) == 0 {
		return
	}
	var reason string
	switch {
	case ex.unread() && ex.status/100 == 2:
		p.obs.unread(ex.sess, ex.keys, ex.status)
		return
	case ex.failed != nil:
		reason = "the MCP server is unreachable: " + ex.failed.Error()
	case ex.status/100 != 2:
		reason = fmt.Sprintf("the MCP server answered HTTP %d", ex.status)
	case ex.sse != nil && (ex.sessionID != "" || ex.adopted):
		return // a client may resume the stream; Timeout bounds the wait
	default:
		reason = "the response ended without answering"
	}
	p.obs.abandon(ex.sess, ex.keys, ex.status, reason)
}

// Close records every request still waiting for its response as an error.
// Call it after the http.Server serving p has shut down.
func (p *HTTPProxy) Close() error {
	p.obs.endAll("the proxy shut down")
	return nil
}

// jsonObserver passes an application/json body through and observes it
// once it has been read to the end.
type jsonObserver struct {
	rc       io.ReadCloser
	limit    int64
	onEOF    func([]byte)
	buf      []byte
	over     bool // the body is over limit, or was observed
	observed bool
}

func (j *jsonObserver) Read(p []byte) (int, error) {
	n, err := j.rc.Read(p)
	if !j.over {
		if int64(len(j.buf)+n) > j.limit {
			j.over, j.buf = true, nil
		} else {
			j.buf = append(j.buf, p[:n]...)
		}
	}
	if errors.Is(err, io.EOF) && !j.over && len(bytes.TrimSpace(j.buf)) > 0 {
		j.onEOF(j.buf)
		j.over, j.observed, j.buf = true, true, nil
	}
	return n, err
}

func (j *jsonObserver) Close() error { return j.rc.Close() }

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(h http.Header) string {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}
