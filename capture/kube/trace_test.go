package kube

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// TestTraceContext: the proxy records the agent's trace with a span of its
// own and forwards to the API server a traceparent naming that span; a
// malformed traceparent starts a new trace.
func TestTraceContext(t *testing.T) {
	up := &capturetest.Headers{Next: newFakeCluster()}
	srv := httptest.NewServer(up)
	defer srv.Close()
	ids := &capture.Identities{Default: capture.Actor{ID: "default-agent"}}
	ids.Add(agentToken, capture.Actor{ID: "agent-ops", Session: "ops-default"})
	proxy, rec := startProxy(t, srv.URL, Config{Identities: ids})
	for i, tc := range capturetest.TraceCases {
		t.Run(tc.Name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/namespaces/default/pods/web", nil)
			req.Header = capturetest.TraceHeaders(tc.Traceparent, tc.Session)
			req.Header.Set("Authorization", "Bearer "+agentToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			e := rec.Wait(t, i+1)[i]
			capturetest.CheckTrace(t, e, tc.Traceparent, up.Last())
			if e.SessionID != tc.WantSession("ops-default") {
				t.Errorf("session_id = %q, want %q", e.SessionID, tc.WantSession("ops-default"))
			}
		})
	}
}
