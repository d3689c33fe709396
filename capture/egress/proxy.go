// Package egress is the forward-proxy capture surface: an HTTP proxy that
// agents reach the network through (HTTPS_PROXY / HTTP_PROXY), enforcing an
// egress policy and recording one forward-proxy event per CONNECT tunnel or
// plain-HTTP request.
//
// TLS is never intercepted: a CONNECT tunnel splices bytes both ways and the
// proxy sees only the destination and the byte counts. Plain-HTTP requests
// in absolute form are forwarded with hop-by-hop headers removed; the
// Proxy-Authorization header is consumed and never forwarded.
//
// Each destination name is resolved once, the policy is decided on the
// resolved addresses, and exactly those addresses are dialled, so a name
// that resolves to a public address for the check and to a private one for
// the connection (DNS rebinding) cannot slip past the policy.
package egress

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// Config configures a Proxy. Recorder is required.
type Config struct {
	// Recorder takes the events, redacted.
	Recorder capture.Recorder
	// Identities resolve the actor from the Proxy-Authorization credential
	// (the token of Bearer credentials; for Basic, the password — or the
	// user name when the password is empty — or else the whole
	// user:password), then the X-Agenttrail-Actor-Id header, then
	// Identities.Default. Once credentials are mapped, a request presenting
	// none of them is refused (407) unless Identities.AllowUnmapped is set.
	// Nil records every request as the actor "anonymous".
	Identities *capture.Identities
	// Redactor scrubs every event; URL query strings often hold secrets.
	// Nil means the built-in rules (redact.Builtin).
	Redactor *redact.Redactor
	// Policy decides which destinations may be reached.
	Policy Policy
	// Resolver resolves destination names; nil means net.DefaultResolver.
	Resolver Resolver
	// DialTimeout bounds resolving and connecting to a destination
	// (default 10 s).
	DialTimeout time.Duration
	// Logger logs refused and failed connections; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Resolver looks up the addresses of a host name. *net.Resolver implements
// it. Implementations are safe for concurrent use.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Proxy is the forward proxy, an http.Handler. It is safe for concurrent
// use. Serve it from an HTTP/1.1 server (CONNECT needs to take over the
// connection) and call Close when the server has stopped: open tunnels
// outlive the server's Shutdown until Close ends them, and the events of
// the last requests are recorded by the time Close returns.
type Proxy struct {
	rec      capture.Recorder // redacting
	ids      *capture.Identities
	rules    *rules
	resolver Resolver
	dialer   *net.Dialer
	timeout  time.Duration
	log      *slog.Logger
	now      func() time.Time
	forward  *http.Transport
	errorLog *log.Logger // for httputil.ReverseProxy

	tunnels capture.Tracker[*tunnel]
}

var _ http.Handler = (*Proxy)(nil)

const defaultDialTimeout = 10 * time.Second

// New returns a Proxy for cfg. It fails when Recorder is missing or a
// policy pattern is not valid.
func New(cfg Config) (*Proxy, error) {
	if cfg.Recorder == nil {
		return nil, errors.New("egress proxy: a recorder is required")
	}
	rules, err := compilePolicy(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	p := &Proxy{
		rec:      capture.NewRedacting(cfg.Recorder, cfg.Redactor),
		ids:      cfg.Identities,
		rules:    rules,
		resolver: cfg.Resolver,
		timeout:  cfg.DialTimeout,
		log:      cfg.Logger,
		now:      cfg.Now,
	}
	if p.ids == nil {
		p.ids = &capture.Identities{Default: capture.Actor{ID: "anonymous"}}
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	if p.timeout <= 0 {
		p.timeout = defaultDialTimeout
	}
	defaults.Logger(&p.log)
	defaults.Clock(&p.now)
	p.dialer = &net.Dialer{Timeout: p.timeout, KeepAlive: 30 * time.Second}
	p.forward = p.newTransport()
	p.errorLog = slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)
	return p, nil
}

// ServeHTTP serves one proxy request: a CONNECT tunnel or a plain-HTTP
// request in absolute form. Anything else is answered 400 and not recorded.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{start: p.now(), method: r.Method, span: capture.SpanFromRequest(r.Header)}
	var admitted bool
	x.actor, admitted = p.actor(r)
	r.Header.Del("Proxy-Authorization")
	switch {
	case !admitted && (r.Method == http.MethodConnect || r.URL.IsAbs()):
		p.refuseUnknown(w, r, x)
	case r.Method == http.MethodConnect:
		p.connect(w, r, x)
	case r.URL.IsAbs() && r.URL.Host != "":
		p.serveForward(w, r, x)
	default:
		http.Error(w, "agenttrail egress proxy: not a proxy request (send an absolute URL or CONNECT)", http.StatusBadRequest)
	}
}

// actor resolves who sent r, and whether the proxy admits them, and
// removes the header that named them.
func (p *Proxy) actor(r *http.Request) (capture.Actor, bool) {
	cred := ""
	for _, c := range proxyCredentials(r.Header.Get("Proxy-Authorization")) {
		if _, ok := p.ids.Lookup(c); ok {
			cred = c
			break
		}
	}
	a, ok := p.ids.Admit(cred, r.Header)
	r.Header.Del(capture.HeaderActorID)
	if a.ID == "" {
		a.ID = "anonymous"
	}
	return a, ok
}

// refuseUnknown answers 407 to a request whose proxy credential is not
// mapped, and records the refusal.
func (p *Proxy) refuseUnknown(w http.ResponseWriter, r *http.Request, x *exchange) {
	hostport, def := r.Host, 443
	if r.Method != http.MethodConnect {
		hostport, def = r.URL.Host, 80
		x.target = "http://" + r.URL.Host + r.URL.RequestURI()
		x.path = r.URL.RequestURI()
	}
	x.host, x.port, _ = splitHostPort(hostport, def)
	x.status, x.rule = http.StatusProxyAuthRequired, RuleUnknownCredential
	p.log.Info("egress proxy: refused", "action", x.action(), "rule", x.rule)
	w.Header().Set("Proxy-Authenticate", `Basic realm="agenttrail"`)
	http.Error(w, "agenttrail egress proxy: unknown or missing proxy credential", http.StatusProxyAuthRequired)
	p.record(context.WithoutCancel(r.Context()), x)
}

// proxyCredentials returns the credentials a Proxy-Authorization value may
// be mapped by, in order: the token of Bearer; the password of Basic (the
// user name when the password is empty, as in http://TOKEN@proxy), then
// the whole user:password.
func proxyCredentials(v string) []string {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "bearer":
		if rest != "" {
			return []string{rest}
		}
	case "basic":
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(b) == 0 {
			return nil
		}
		user, pass, _ := strings.Cut(string(b), ":")
		if pass == "" {
			return []string{user, string(b)}
		}
		return []string{pass, string(b)}
	}
	return nil
}

// Close ends every open tunnel, recording each, and refuses new ones. It
// waits for the tunnels' events to be recorded and closes idle upstream
// connections. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.tunnels.Close((*tunnel).Abort)
	p.forward.CloseIdleConnections()
	return nil
}
