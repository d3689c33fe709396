package egress

import (
	"testing"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// TestTraceContext: a plain request's trace is recorded with the proxy's
// own span and forwarded naming that span; a malformed traceparent starts a
// new trace; a CONNECT tunnel, which shows the proxy no request headers,
// records a trace of its own and the credential's default session.
func TestTraceContext(t *testing.T) {
	up, seen := plainUpstream(t)
	p := port(t, up)
	ids := identities()
	ids.Add("sk-proxy-2", capture.Actor{ID: "agent-nightly", Session: "nightly-run"})
	proxy, rec := startProxy(t, Config{
		Resolver:   newFakeResolver(map[string]string{"example.com": "127.0.0.1"}),
		Identities: ids,
		Policy:     Policy{AllowPrivate: true},
	})
	for i, tc := range capturetest.TraceCases {
		t.Run(tc.Name, func(t *testing.T) {
			args := []string{"-x", proxy, "--proxy-user", "x:sk-proxy-2"}
			for k, vv := range capturetest.TraceHeaders(tc.Traceparent, tc.Session) {
				args = append(args, "-H", k+": "+vv[0])
			}
			if out, errOut, code := curl(t, append(args, "http://example.com:"+p+"/items")...); code != 0 {
				t.Fatalf("curl = %q, exit %d (%s)", out, code, errOut)
			}
			e := rec.Wait(t, i+1)[i]
			capturetest.CheckTrace(t, e, tc.Traceparent, seen()[i].header)
			if e.SessionID != tc.WantSession("nightly-run") {
				t.Errorf("session_id = %q, want %q", e.SessionID, tc.WantSession("nightly-run"))
			}
		})
	}

	tls, ca := tlsUpstream(t)
	if out, errOut, code := curl(t, "-x", proxy, "--proxy-user", "x:sk-proxy-2", "--cacert", ca,
		"-H", "traceparent: "+capturetest.Traceparent, "https://example.com:"+port(t, tls)+"/"); code != 0 {
		t.Fatalf("curl https = %q, exit %d (%s)", out, code, errOut)
	}
	e := rec.Wait(t, 4)[3]
	capturetest.CheckTrace(t, e, "", nil) // the traceparent went inside the tunnel
	if e.SessionID != "nightly-run" {
		t.Errorf("tunnel session_id = %q, want the credential's nightly-run", e.SessionID)
	}
}
