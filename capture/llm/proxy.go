// Package llm is the LLM API capture surface: a reverse proxy in front of
// the OpenAI (Chat Completions, Responses) and Anthropic (Messages) APIs that
// records one llm-proxy event per request, with the token usage the provider
// reported and its cost from a price table.
//
// Streams pass through event by event, flushed as they arrive. For an OpenAI
// chat stream that did not ask for usage the proxy asks on the client's
// behalf (stream_options.include_usage) and removes the extra usage chunk and
// the "usage":null members again, so the client sees the stream it asked for.
//
// Prompts and completions are recorded only with Config.RecordBodies, and
// then redacted; request headers, and so API keys, are never recorded.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// Config configures a Proxy. Upstream and Recorder are required.
type Config struct {
	// Upstream is the API base URL, e.g. https://api.openai.com or
	// https://api.anthropic.com. Request paths are appended to its path.
	Upstream *url.URL
	// Provider is ProviderOpenAI, ProviderAnthropic, or ProviderAuto (the
	// zero value): tell them apart by endpoint. A fixed provider meters only
	// its own endpoints; the others are forwarded and recorded by path.
	Provider Provider
	// Recorder takes the events, redacted.
	Recorder capture.Recorder
	// Identities resolve the actor from the credential the agent presents:
	// the bearer token (OpenAI) or the x-api-key header (Anthropic). Once
	// credentials are mapped, a call presenting none of them is refused
	// (401 in the provider's error shape, recorded as denied) unless
	// Identities.AllowUnmapped is set. Nil records every call as the actor
	// "anonymous".
	Identities *capture.Identities
	// UpstreamKeys, when set, maps the actor ID of a mapped credential (one
	// found in Identities, never one named by the X-Agenttrail-Actor-Id
	// header) to the real upstream API key that replaces it, so agents hold
	// only proxy credentials. The key "*" applies to every mapped actor
	// without its own entry. Other credentials are forwarded as they are.
	UpstreamKeys map[string]string
	// Prices prices the usage; nil means DefaultPrices.
	Prices *Prices
	// RecordBodies records the request body and the completion text, each
	// capped at 64 KiB and redacted, under metadata.llm_bodies.
	RecordBodies bool
	// Redactor scrubs every event before it is recorded; nil means the
	// built-in rules (redact.Builtin).
	Redactor *redact.Redactor
	// Transport sends requests upstream; nil means a transport tuned for
	// one busy upstream host.
	Transport http.RoundTripper
	// Logger logs upstream failures; nil discards.
	Logger *slog.Logger
	// Registerer, when set, registers the proxy's metrics.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Budget, when set, enforces the trail's budgets on metered calls
	// (see BudgetConfig).
	Budget *BudgetConfig
}

// Proxy is the LLM reverse proxy: an http.Handler that forwards every
// request to the upstream and records one event per request. It is safe for
// concurrent use and holds nothing that needs closing beyond the idle
// connections of its transport.
type Proxy struct {
	upstream   *url.URL
	provider   Provider
	rec        capture.Recorder // redacting
	ids        *capture.Identities
	keys       map[string]string
	prices     *Prices
	bodies     bool
	transport  http.RoundTripper
	logger     *slog.Logger
	now        func() time.Time
	metrics    *metrics
	bufs       sync.Pool // *[]byte of copyBufSize
	maxRequest int64
	budget     *budgeter // nil: budgets are not enforced
}

const (
	copyBufSize = 32 << 10
	// maxRequestBody bounds a metered request body, which the proxy must hold
	// to read (and maybe amend) it. Image and file inputs make them large.
	maxRequestBody = 64 << 20
	// maxCapture bounds how much of a non-streamed response is kept to read
	// its usage; a larger response is forwarded but not metered.
	maxCapture = 16 << 20
)

// New returns a Proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	if cfg.Upstream == nil || cfg.Upstream.Scheme == "" || cfg.Upstream.Host == "" {
		return nil, errors.New("llm proxy: an absolute upstream URL is required")
	}
	if cfg.Recorder == nil {
		return nil, errors.New("llm proxy: a recorder is required")
	}
	switch cfg.Provider {
	case "", ProviderAuto, ProviderOpenAI, ProviderAnthropic:
	default:
		return nil, fmt.Errorf("llm proxy: unknown provider %q (want openai, anthropic or auto)", cfg.Provider)
	}
	p := &Proxy{
		upstream:   cfg.Upstream,
		provider:   cfg.Provider,
		rec:        capture.NewRedacting(cfg.Recorder, cfg.Redactor),
		ids:        cfg.Identities,
		keys:       cfg.UpstreamKeys,
		prices:     cfg.Prices,
		bodies:     cfg.RecordBodies,
		transport:  cfg.Transport,
		logger:     cfg.Logger,
		now:        cfg.Now,
		maxRequest: maxRequestBody,
	}
	if p.provider == "" {
		p.provider = ProviderAuto
	}
	if p.ids == nil {
		p.ids = &capture.Identities{}
	}
	if p.prices == nil {
		var err error
		if p.prices, err = DefaultPrices(); err != nil {
			return nil, err
		}
	}
	if p.transport == nil {
		p.transport = capture.Transport(256)
	}
	defaults.Logger(&p.logger)
	defaults.Clock(&p.now)
	var err error
	if p.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	p.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	if cfg.Budget != nil {
		if p.budget, err = newBudgeter(*cfg.Budget, p.logger, p.now); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ServeHTTP forwards r upstream, relays the response and records the call.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{start: p.now(), ep: classify(r, p.provider), keepBodies: p.bodies, span: capture.SpanFromRequest(r.Header)}
	cred, credHeader := credential(r.Header)
	var admitted bool
	c.actor, admitted = p.ids.Admit(cred, r.Header)
	if c.actor.ID == "" {
		c.actor.ID = "anonymous"
	}
	defer func() { p.record(context.WithoutCancel(r.Context()), c, cred) }()
	if !admitted {
		c.status, c.denied = http.StatusUnauthorized, true
		c.errMsg = "refused by the proxy: the presented API key is not mapped to an agent"
		writeAuthError(w, c.ep.provider)
		return
	}

	out, status, err := p.outRequest(r, c, cred, credHeader)
	if err != nil {
		c.status, c.errMsg = status, err.Error()
		http.Error(w, "agenttrail llm proxy: "+err.Error(), status)
		return
	}
	if !p.admit(r.Context(), w, c) {
		return // refused by a budget: answered and recorded
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		if r.Context().Err() != nil {
			c.clientGone = true
			return
		}
		p.logger.Warn("llm proxy: upstream unreachable", "upstream", p.upstream.Host, "action", c.ep.action, "err", err)
		c.unreachable = true
		c.status, c.errMsg = http.StatusBadGateway, "upstream unreachable: "+err.Error()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, `{"error":{"type":"upstream_unreachable","message":"agenttrail llm proxy: the upstream API is unreachable"}}`+"\n")
		return
	}
	defer resp.Body.Close()
	c.status = resp.StatusCode

	h := w.Header()
	for k, vv := range resp.Header {
		if !isHopHeader(k) {
			h[k] = vv
		}
	}
	sse := strings.HasPrefix(strings.ToLower(resp.Header.Get("Content-Type")), "text/event-stream")
	if sse {
		c.stream = true
		h.Del("Content-Length") // events may be dropped or rewritten
	}
	w.WriteHeader(resp.StatusCode)
	if sse {
		p.relayStream(w, resp.Body, c)
	} else {
		p.relayBody(w, resp.Body, c)
	}
	if c.cut != nil && r.Context().Err() != nil {
		// The read failed because the client left and took the request
		// context with it: not the upstream's doing.
		c.cut, c.clientGone = nil, true
	}
	if c.cut != nil {
		// Ending the response cleanly would pass a truncated answer off as
		// whole; aborting lets the client see the cut, as it would have
		// without the proxy. The deferred record still runs.
		panic(http.ErrAbortHandler)
	}
}

// outRequest builds the upstream request. A metered request's body is read
// whole, to learn its model and stream flag and maybe ask for stream usage;
// other bodies stream through untouched. On error it returns the status to
// answer the client with.
func (p *Proxy) outRequest(r *http.Request, c *call, cred, credHeader string) (*http.Request, int, error) {
	u := *p.upstream
	u.Path = strings.TrimSuffix(p.upstream.Path, "/") + r.URL.Path
	u.RawPath = ""
	if r.URL.RawPath != "" {
		u.RawPath = strings.TrimSuffix(p.upstream.EscapedPath(), "/") + r.URL.RawPath
	}
	u.RawQuery = r.URL.RawQuery

	var body io.Reader = r.Body
	length := r.ContentLength
	if c.ep.meter != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, p.maxRequest+1))
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("read request: %w", err)
		}
		if int64(len(b)) > p.maxRequest {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", p.maxRequest)
		}
		info, fwd, injected := inspectRequest(c.ep.action, b)
		c.reqModel, c.injected, c.stream = info.Model, injected, info.Stream
		c.reqBytes, c.maxOut = len(b), max(info.MaxTokens, info.MaxCompletionTokens, info.MaxOutputTokens)
		if c.keepBodies {
			c.request = b
		}
		body, length = bytes.NewReader(fwd), int64(len(fwd))
	}
	if length == 0 {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), body)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("build upstream request: %w", err)
	}
	out.ContentLength = length
	out.Header = r.Header.Clone()
	for k := range out.Header {
		if isHopHeader(k) {
			out.Header.Del(k)
		}
	}
	for _, k := range strings.Split(r.Header.Get("Connection"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			out.Header.Del(k)
		}
	}
	out.Header.Del(capture.HeaderActorID)
	c.span.Forward(out.Header)
	if c.ep.meter != nil {
		// Let the transport negotiate compression and decode it, so the
		// proxy can read usage from the body.
		out.Header.Del("Accept-Encoding")
	}
	if key := p.upstreamKey(cred); key != "" {
		if credHeader == "Authorization" {
			out.Header.Set("Authorization", "Bearer "+key)
		} else {
			out.Header.Set(credHeader, key)
		}
	}
	return out, 0, nil
}

// upstreamKey returns the key to substitute for cred, or "" to forward
// cred as it is. Only a credential mapped in Identities qualifies: an actor
// named by header proves nothing.
func (p *Proxy) upstreamKey(cred string) string {
	if len(p.keys) == 0 || cred == "" {
		return ""
	}
	a, ok := p.ids.Lookup(cred)
	if !ok {
		return ""
	}
	if k, ok := p.keys[a.ID]; ok {
		return k
	}
	return p.keys["*"]
}

// writeAuthError answers 401 in the provider's error shape, so the SDK
// raises its usual authentication error.
func writeAuthError(w http.ResponseWriter, provider Provider) {
	const msg = "agenttrail llm proxy: unknown or missing proxy API key"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	var body any
	if provider == ProviderAnthropic {
		body = map[string]any{"type": "error", "error": map[string]string{"type": "authentication_error", "message": msg}}
	} else {
		body = map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": "invalid_api_key", "param": nil}}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// credential returns the API key the agent presented and the header that
// carried it: x-api-key (Anthropic) or an Authorization bearer token
// (OpenAI).
func credential(h http.Header) (cred, header string) {
	if k := h.Get("X-Api-Key"); k != "" {
		return k, "X-Api-Key"
	}
	if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:]), "Authorization"
	}
	return "", ""
}

// isHopHeader reports the hop-by-hop headers of RFC 9110 §7.6.1, which a
// proxy must not forward.
func isHopHeader(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}
