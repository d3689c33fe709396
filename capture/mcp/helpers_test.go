package mcp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// memRecorder keeps recorded events in memory so unit tests can inspect
// them quickly; acceptance tests use the real client.Recorder instead.
type memRecorder struct{ capturetest.Events }

// waitFor waits until an event satisfies match and returns it.
func (m *memRecorder) waitFor(t testing.TB, what string, match func(e agenttrail.Event) bool) agenttrail.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range m.All() {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event %s among %d recorded:\n%s", what, len(m.All()), dump(m.All()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// call waits for the event of method on resource ("" for any).
func (m *memRecorder) call(t testing.TB, method, resource string) agenttrail.Event {
	t.Helper()
	return m.waitFor(t, method+" "+resource, func(e agenttrail.Event) bool {
		return e.Action == method && (resource == "" || e.ResourceID == resource)
	})
}

func dump(events []agenttrail.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "  %s %s/%s %s %s %s\n", e.Action, e.ResourceType, e.ResourceID, e.Result, e.ActorID, e.Metadata)
	}
	return b.String()
}

// mcpMeta decodes metadata.mcp.
func mcpMeta(t testing.TB, e agenttrail.Event) Metadata {
	t.Helper()
	var m struct {
		MCP *Metadata `json:"mcp"`
	}
	if err := json.Unmarshal(e.Metadata, &m); err != nil || m.MCP == nil {
		t.Fatalf("event %s has no metadata.mcp (%v): %s", e.Action, err, e.Metadata)
	}
	return *m.MCP
}

// checkValid fails when e would be refused by the server.
func checkValid(t testing.TB, e agenttrail.Event) {
	t.Helper()
	e.Normalize(time.Now(), "")
	if err := e.Validate(time.Now()); err != nil {
		t.Errorf("event %s is invalid: %v", e.Action, err)
	}
}

// testConfig returns a Config recording into rec as agent "agent-test".
func testConfig(rec capture.Recorder) Config {
	ids := &capture.Identities{Default: capture.Actor{ID: "agent-test", Org: "acme", Project: "payments"}, AllowUnmapped: true}
	ids.Add("tok-ci", capture.Actor{ID: "agent-ci", Name: "CI agent"})
	return Config{Recorder: rec, Identities: ids}
}
