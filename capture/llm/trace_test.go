package llm_test

import (
	"context"
	"testing"

	"github.com/openai/openai-go/v3/option"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/llm"
)

// TestTraceContext: the proxy records the agent's trace with a span of its
// own and forwards a traceparent naming that span; a malformed traceparent
// starts a new trace instead of failing the call; the session comes from
// the header, else the credential's default.
func TestTraceContext(t *testing.T) {
	ids := testIdentities()
	ids.Add("sk-proxy-nightly-0123456789", capture.Actor{ID: "agent-nightly", Session: "nightly-run"})
	env := startProxy(t, llm.Config{Identities: ids})
	for i, tc := range capturetest.TraceCases {
		t.Run(tc.Name, func(t *testing.T) {
			var opts []option.RequestOption
			for k, vv := range capturetest.TraceHeaders(tc.Traceparent, tc.Session) {
				opts = append(opts, option.WithHeader(k, vv[0]))
			}
			client := openaiClient(env, "sk-proxy-nightly-0123456789")
			if _, err := client.Chat.Completions.New(context.Background(), chatParams("gpt-4o-mini"), opts...); err != nil {
				t.Fatal(err)
			}
			e := env.rec.wait(t, i+1)[i]
			capturetest.CheckTrace(t, e, tc.Traceparent, env.up.last().Header)
			if e.SessionID != tc.WantSession("nightly-run") {
				t.Errorf("session_id = %q, want %q", e.SessionID, tc.WantSession("nightly-run"))
			}
		})
	}
}
