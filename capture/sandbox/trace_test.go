package sandbox

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// TestDockerTraceContext: a recorded Engine call keeps the agent's trace
// with a span of its own, and the Engine receives a traceparent naming that
// span; a malformed traceparent starts a new trace.
func TestDockerTraceContext(t *testing.T) {
	eng := startEngine(t, "tcp")
	ids := &capture.Identities{Default: capture.Actor{ID: "default-agent", Session: "sandbox-default"}}
	host, _, mem := startDockerProxy(t, "tcp", DockerConfig{Upstream: eng.endpoint(), Identities: ids})
	base := "http://" + strings.TrimPrefix(host, "tcp://")
	for i, tc := range []struct {
		name, traceparent, session, wantSession string
	}{
		{"valid", capturetest.Traceparent, "task-7", "task-7"},
		{"malformed", capturetest.BadTraceparent, "", "sandbox-default"},
		{"none", "", "", "sandbox-default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1.47/containers/create?name=c"+tc.name, bytes.NewReader([]byte(`{"Image":"alpine"}`)))
			req.Header = capturetest.TraceHeaders(tc.traceparent, tc.session)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create: status %d", resp.StatusCode)
			}
			eng.mu.Lock()
			forwarded := eng.lastHeader
			eng.mu.Unlock()
			e := mem.Wait(t, i+1)[i]
			capturetest.CheckTrace(t, e, tc.traceparent, forwarded)
			if e.SessionID != tc.wantSession {
				t.Errorf("session_id = %q, want %q", e.SessionID, tc.wantSession)
			}
		})
	}
}
