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
	for i, tc := range capturetest.TraceCases {
		t.Run(tc.Name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1.47/containers/create?name=c"+tc.Name, bytes.NewReader([]byte(`{"Image":"alpine"}`)))
			req.Header = capturetest.TraceHeaders(tc.Traceparent, tc.Session)
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
			capturetest.CheckTrace(t, e, tc.Traceparent, forwarded)
			if e.SessionID != tc.WantSession("sandbox-default") {
				t.Errorf("session_id = %q, want %q", e.SessionID, tc.WantSession("sandbox-default"))
			}
		})
	}
}
