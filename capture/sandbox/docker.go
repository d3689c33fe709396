package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// DockerConfig configures a DockerProxy. Upstream and Recorder are
// required.
type DockerConfig struct {
	// Upstream is the Docker Engine API to forward to, e.g.
	// unix:///var/run/docker.sock (see ParseEndpoint).
	Upstream Endpoint
	// Recorder takes the events, redacted.
	Recorder capture.Recorder
	// Identities resolve the actor. The Engine API carries no credential;
	// on a unix socket served with ConnContext (Linux) the credential is
	// the connecting process's user as "uid:N", so each agent running as
	// its own user is told apart by the kernel. Then the
	// X-Agenttrail-Actor-Id header (the docker CLI sends it when
	// config.json lists it under HttpHeaders), then Identities.Default.
	// Nil records every call as the actor "anonymous".
	Identities *capture.Identities
	// Redactor scrubs every event; exec commands often carry secrets. Nil
	// means the built-in rules (redact.Builtin).
	Redactor *redact.Redactor
	// MaxRemembered bounds how many containers (for their image and name)
	// and exec instances (for their container and command) the proxy
	// remembers from the calls that created them (default 4096 of each).
	MaxRemembered int
	// DialTimeout bounds connecting to the Engine (default 10 s).
	DialTimeout time.Duration
	// Logger logs Engine failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DockerProxy is the Docker Engine API proxy, an http.Handler. It is safe
// for concurrent use. Serve it from an HTTP/1.1 server (attach and exec
// take over the connection) and call Close when the server has stopped:
// hijacked streams outlive the server's Shutdown until Close ends them.
type DockerProxy struct {
	upstream Endpoint
	rec      capture.Recorder // redacting
	ids      *capture.Identities
	memo     *memo
	dialer   *net.Dialer
	log      *slog.Logger
	now      func() time.Time
	rp       *httputil.ReverseProxy
	tr       *http.Transport

	sessions capture.Tracker[*session]
}

var _ http.Handler = (*DockerProxy)(nil)

const (
	defaultMaxRemembered = 4096
	defaultDialTimeout   = 10 * time.Second
)

// NewDockerProxy returns a DockerProxy for cfg. It fails when Upstream or
// Recorder is missing.
func NewDockerProxy(cfg DockerConfig) (*DockerProxy, error) {
	if cfg.Upstream.Network != "unix" && cfg.Upstream.Network != "tcp" || cfg.Upstream.Address == "" {
		return nil, errors.New("docker proxy: an upstream unix or tcp endpoint is required")
	}
	if cfg.Recorder == nil {
		return nil, errors.New("docker proxy: a recorder is required")
	}
	p := &DockerProxy{
		upstream: cfg.Upstream,
		rec:      capture.NewRedacting(cfg.Recorder, cfg.Redactor),
		ids:      cfg.Identities,
		log:      cfg.Logger,
		now:      cfg.Now,
	}
	if p.ids == nil {
		p.ids = &capture.Identities{Default: capture.Actor{ID: "anonymous"}}
	}
	defaults.Logger(&p.log)
	defaults.Clock(&p.now)
	max := cfg.MaxRemembered
	defaults.Positive(&max, defaultMaxRemembered)
	p.memo = newMemo(max)
	timeout := cfg.DialTimeout
	defaults.Positive(&timeout, defaultDialTimeout)
	p.dialer = &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	p.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return p.upstream.dial(ctx, p.dialer)
		},
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	// Streams (logs -f, events, wait) have no Content-Length, and the
	// reverse proxy flushes those as they flow; other answers go out whole.
	p.rp = capture.ReverseProxy(httputil.ReverseProxy{
		Rewrite: p.rewrite, Transport: p.tr, ModifyResponse: p.modifyResponse, ErrorHandler: p.proxyError,
	}, p.log)
	return p, nil
}

// upstreamHost is the URL host of requests to the Engine; a unix socket
// has none, and the Engine ignores it.
func (p *DockerProxy) upstreamHost() string {
	if p.upstream.Network == "unix" {
		return "docker"
	}
	return p.upstream.Address
}

func (p *DockerProxy) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = p.upstreamHost()
}

// peerKey carries the peer credential of a connection.
type peerKey struct{}

// ConnContext notes who is at the other end of a unix socket connection,
// for Identities. Set it as the http.Server's ConnContext.
func (p *DockerProxy) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cred := peerCredential(c); cred != "" {
		return context.WithValue(ctx, peerKey{}, cred)
	}
	return ctx
}

// callKey carries the *call of a recorded request through the reverse
// proxy's hooks.
type callKey struct{}

// ServeHTTP relays one Engine API request, recording it when it is one of
// the recorded operations.
func (p *DockerProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	rt := parseRoute(r.Method, r.URL.Path)
	peer, _ := r.Context().Value(peerKey{}).(string)
	actor, admitted := p.ids.Admit(peer, r.Header)
	var c *call
	if rt.op != "" {
		c = &call{start: start, route: rt, apiPath: r.URL.Path, span: capture.SpanFromRequest(r.Header)}
		c.actor = actor
		if c.actor.ID == "" {
			c.actor.ID = "anonymous"
		}
		p.readRequest(r, c)
	}
	r.Header.Del(capture.HeaderActorID)
	if c != nil {
		// The Engine's own traces (dockerd reads traceparent) join the
		// span recorded for the call; unrecorded requests pass as they are.
		c.span.Forward(r.Header)
	} else {
		r.Header.Del(capture.HeaderSessionID)
	}
	if !admitted {
		// Once peers are mapped, only they may drive the Engine.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"agenttrail docker proxy: this peer is not mapped to an agent"}`+"\n")
		if c != nil {
			c.status, c.denied, c.errMsg = http.StatusForbidden, true, "refused by the proxy: the peer is not mapped to an agent"
			p.record(r.Context(), c)
		}
		return
	}
	if isUpgrade(r.Header) {
		p.relayUpgrade(w, r, c)
		return
	}
	if c == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
}

// modifyResponse records a call when the Engine has answered it, reading
// the small JSON bodies that name what was created or why it failed. It
// records before the client sees the answer, so the trail's order is the
// order in which the agent learned of its actions.
func (p *DockerProxy) modifyResponse(resp *http.Response) error {
	c, _ := resp.Request.Context().Value(callKey{}).(*call)
	if c == nil {
		return nil
	}
	c.status = resp.StatusCode
	c.readResponse(resp)
	p.finish(resp.Request.Context(), c)
	return nil
}

// proxyError records and answers a request the Engine did not answer.
func (p *DockerProxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if c, _ := r.Context().Value(callKey{}).(*call); c != nil {
		c.fail(r.Context(), err)
		p.finish(r.Context(), c)
	}
	if r.Context().Err() != nil {
		return // the client went away; there is no one to answer
	}
	p.log.Warn("docker proxy: engine unreachable", "upstream", p.upstream.String(), "path", r.URL.Path, "err", err)
	engineError(w, http.StatusBadGateway, "agenttrail docker proxy: engine unreachable: "+err.Error())
}

// engineError answers like the Engine does: {"message": "…"}.
func engineError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Close ends every hijacked stream and closes idle connections to the
// Engine. It is safe to call more than once.
func (p *DockerProxy) Close() error {
	p.sessions.Close((*session).Abort)
	p.tr.CloseIdleConnections()
	return nil
}
