package egress

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/servertest"
)

// TestEndToEnd runs the proxy with the SDK's Recorder in front of a real
// server on SQLite. The server is down for the first requests: the proxied
// traffic must flow regardless, and every event must be stored once the
// server is back, with no secret in it.
func TestEndToEnd(t *testing.T) {
	addr := capturetest.FreeAddr(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	rec := capturetest.Recorder(t, "http://"+addr)

	tlsUp, ca := tlsUpstream(t)
	plainUp, _ := plainUpstream(t)
	tp, pp := port(t, tlsUp), port(t, plainUp)
	proxy, _ := startProxy(t, Config{
		Recorder:   rec,
		Identities: identities(),
		Resolver:   newFakeResolver(map[string]string{"example.com": "127.0.0.1", "api.evil.test": "127.0.0.1"}),
		Policy:     Policy{Allow: []string{"example.com"}, Deny: []string{"*.evil.test"}},
		Logger:     logger,
	})
	const secret = "hunter2-Zq9"

	// The audit server is down: the traffic still goes through.
	if out, errOut, code := curl(t, "-x", proxy, "--proxy-user", "ci:sk-proxy-1", "--cacert", ca, "https://example.com:"+tp+"/"); code != 0 || out != "hello from upstream" {
		t.Fatalf("tunnel with the audit server down: %q, exit %d (%s)", out, code, errOut)
	}
	if out, errOut, code := curl(t, "-x", proxy, "http://example.com:"+pp+"/login?user=bob&password="+secret); code != 0 || out != "ok:" {
		t.Fatalf("plain request with the audit server down: %q, exit %d (%s)", out, code, errOut)
	}
	if out, _, _ := curl(t, "-x", proxy, "-o", "/dev/null", "-w", "%{http_connect}", "https://api.evil.test/"); out != "403" {
		t.Fatalf("denied tunnel: status %q, want 403", out)
	}

	srv := servertest.StartAt(t, addr, t.TempDir())
	if out, errOut, code := curl(t, "-x", proxy, "-H", "X-Agenttrail-Actor-Id: agent-7", "http://example.com:"+pp+"/status/404"); code != 0 || !strings.Contains(out, "no such thing") {
		t.Fatalf("plain request with the audit server up: %q, exit %d (%s)", out, code, errOut)
	}

	type want struct {
		action string
		actor  string
		status int
		result agenttrail.Result
		rule   string
	}
	wants := []want{
		{"CONNECT example.com:" + tp, "agent-ci", 200, agenttrail.ResultSuccess, ""},
		{"GET http://example.com:" + pp + "/login?user=bob&password=[REDACTED:kv_secret]", "default-agent", 200, agenttrail.ResultSuccess, ""},
		{"CONNECT api.evil.test:443", "default-agent", 403, agenttrail.ResultDenied, "deny:*.evil.test"},
		{"GET http://example.com:" + pp + "/status/404", "agent-7", 404, agenttrail.ResultFailure, ""},
	}
	events := capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{Source: []string{agenttrail.SourceEgress}}, len(wants))
	// Events recorded while the server was down are replayed from the
	// spool, and may be stored after the one recorded once it was back:
	// match them by action, not by position.
	byAction := map[string]agenttrail.Event{}
	for _, e := range events {
		byAction[e.Action] = e
	}
	for i, w := range wants {
		e, ok := byAction[w.action]
		if !ok {
			t.Errorf("no stored event %q among %d", w.action, len(events))
			continue
		}
		m := httpMeta(t, e)
		if e.Action != w.action || e.ActorID != w.actor || e.StatusCode != w.status || e.Result != w.result || m.Rule != w.rule {
			t.Errorf("event %d = %q by %q, %d %s rule %q; want %q by %q, %d %s rule %q",
				i, e.Action, e.ActorID, e.StatusCode, e.Result, m.Rule, w.action, w.actor, w.status, w.result, w.rule)
		}
		if e.Source != agenttrail.SourceEgress || e.ResourceType != "domain" || e.ProducerID == "" {
			t.Errorf("event %d: source %q, resource type %q, producer %q", i, e.Source, e.ResourceType, e.ProducerID)
		}
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), secret) {
			t.Errorf("event %d holds the secret: %s", i, b)
		}
	}
	if m := httpMeta(t, byAction[wants[0].action]); !m.Tunnel || !m.TLS || m.BytesIn < 500 || m.BytesOut < 200 {
		t.Errorf("tunnel metadata = %+v, want tunnel, tls and the bytes counted", m)
	}
	for _, w := range wants {
		if e := byAction[w.action]; e.Description == "" {
			t.Errorf("event %q has no description", w.action)
		}
	}
}
