package shell

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// TestRunTraceContext: the command's TRACEPARENT is the parent of the span
// recorded for it, and the command runs with a TRACEPARENT naming that span
// (and the TRACESTATE and AGENTTRAIL_SESSION_ID it was given); a malformed
// TRACEPARENT starts a new trace.
func TestRunTraceContext(t *testing.T) {
	for _, tc := range capturetest.TraceCases {
		t.Run(tc.Name, func(t *testing.T) {
			rec := &memRecorder{}
			cmd := exec.Command("sh", "-c", `printf '%s\n%s\n%s' "$TRACEPARENT" "$TRACESTATE" "$AGENTTRAIL_SESSION_ID"`)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "TRACEPARENT=stale-duplicate"}
			if tc.Traceparent != "" {
				cmd.Env = append(cmd.Env, "TRACEPARENT="+tc.Traceparent, "TRACESTATE="+capturetest.Tracestate)
			}
			if tc.Session != "" {
				cmd.Env = append(cmd.Env, "AGENTTRAIL_SESSION_ID="+tc.Session)
			}
			res, err := Run(context.Background(), rec, agent, cmd, Options{})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("Run = %+v, %v", res, err)
			}
			e := rec.only(t)
			lines := strings.Split(string(res.Stdout), "\n")
			child := http.Header{"Traceparent": {lines[0]}, "Tracestate": {lines[1]}}
			capturetest.CheckTrace(t, e, tc.Traceparent, child)
			if e.SessionID != tc.WantSession("") || lines[2] != tc.Session {
				t.Errorf("session_id = %q, child's AGENTTRAIL_SESSION_ID = %q; want %q", e.SessionID, lines[2], tc.Session)
			}
		})
	}
}
