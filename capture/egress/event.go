package egress

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// HTTP is what a forward-proxy event holds under metadata.http.
//
// BytesOut counts what the client sent towards the destination and BytesIn
// what came back: for a tunnel, the raw (encrypted) bytes each way; for a
// plain request, the request and response bodies.
type HTTP struct {
	Domain   string `json:"domain"`
	Port     int    `json:"port"`
	Method   string `json:"method"`
	Path     string `json:"path,omitempty"`
	BytesIn  int64  `json:"bytes_in"`
	BytesOut int64  `json:"bytes_out"`
	// Tunnel is set for a CONNECT tunnel that was opened; TLS only when
	// the client's first bytes through it were a TLS ClientHello. The proxy
	// never decrypts, so it records what it saw, not what the port suggests.
	Tunnel bool `json:"tunnel,omitempty"`
	TLS    bool `json:"tls"`
	// Rule names the policy rule that refused the request: "deny:PATTERN",
	// RuleNotAllowed or RulePrivate.
	Rule string `json:"rule,omitempty"`
	// Address is the address the proxy connected to.
	Address string `json:"address,omitempty"`
}

// exchange is one proxied request or tunnel, filled in as it goes and
// recorded when it ends.
type exchange struct {
	start    time.Time
	end      time.Time // when the answer was relayed; zero: when recorded
	actor    capture.Actor
	span     capture.Span // a CONNECT's from its own headers, which seldom carry any
	method   string
	host     string
	port     int
	target   string // the URL of a plain request, without user info
	path     string
	tunnel   bool
	tls      bool
	addr     string
	status   int
	bytesIn  int64
	bytesOut int64
	rule     string
	broken   bool // the surface failed: unreachable, or the client went away
	errMsg   string
}

func (x *exchange) action() string {
	if x.method == http.MethodConnect {
		return "CONNECT " + net.JoinHostPort(x.host, strconv.Itoa(x.port))
	}
	return x.method + " " + x.target
}

// record turns x into one event and hands it to the recorder, redacted.
func (p *Proxy) record(ctx context.Context, x *exchange) {
	if x.end.IsZero() {
		x.end = p.now()
	}
	e := agenttrail.Event{
		Time:         x.start,
		DurationMS:   float64(x.end.Sub(x.start).Microseconds()) / 1000,
		Source:       agenttrail.SourceEgress,
		Action:       x.action(),
		ResourceType: "domain",
		ResourceID:   x.host,
		StatusCode:   x.status,
		Description:  x.errMsg,
	}
	x.actor.Apply(&e)
	x.span.Apply(&e)
	e.Result = capture.ProxiedResult(x.broken, x.rule != "", x.status)
	if e.Description == "" {
		e.Description = x.describe()
	}
	m := HTTP{
		Domain: x.host, Port: x.port, Method: x.method, Path: x.path,
		BytesIn: x.bytesIn, BytesOut: x.bytesOut, Tunnel: x.tunnel, TLS: x.tls, Rule: x.rule, Address: x.addr,
	}
	if err := e.SetMetadata("http", m); err != nil {
		p.log.Error("egress proxy: encode metadata", "err", err)
	}
	p.rec.Record(ctx, e)
}

// recordAfter records x on a goroutine of its own, so that the handler
// returns first: net/http ends a chunked answer (its last chunk) only when
// the handler returns, and building, redacting and queueing the event
// would otherwise sit between the client and the end of its answer. Close
// waits for these goroutines; once the proxy is closed x is recorded before
// recordAfter returns.
func (p *Proxy) recordAfter(ctx context.Context, x *exchange) {
	x.end = p.now()
	p.tunnels.Go(func() { p.record(ctx, x) })
}

// describe is the event's description when nothing went wrong in the
// proxy: the refusal, or what went through.
func (x *exchange) describe() string {
	switch {
	case x.rule != "":
		return fmt.Sprintf("%s refused by egress rule %s", x.action(), x.rule)
	case x.tunnel:
		kind := "tunnel"
		if x.tls {
			kind = "TLS tunnel"
		}
		return fmt.Sprintf("%s to %s: %s out, %s in", kind, net.JoinHostPort(x.host, strconv.Itoa(x.port)),
			capture.Bytes(x.bytesOut), capture.Bytes(x.bytesIn))
	}
	return fmt.Sprintf("%s %s: %d, %s out, %s in", x.method, x.target, x.status, capture.Bytes(x.bytesOut), capture.Bytes(x.bytesIn))
}
