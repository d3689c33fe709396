package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

// surfaceEvents returns events as each surface records them, with the
// metadata its capture package writes, and the OCSF class each maps to.
func surfaceEvents(t *testing.T) ([]agenttrail.Event, []int) {
	t.Helper()
	base := func(id, source, action string) agenttrail.Event {
		return agenttrail.Event{
			ID: id, Time: t0, DurationMS: 12.5, ActorType: agenttrail.ActorAgent, ActorID: "agent-7", ActorName: "Coder",
			Source: source, Action: action, Result: agenttrail.ResultSuccess, Org: "acme", Project: "web",
			ProducerID: "host-1", ProducerSeq: 9, Seq: 500, ReceivedAt: t0.Add(time.Second), SessionID: "task-1",
		}
	}
	with := func(e agenttrail.Event, f func(*agenttrail.Event)) agenttrail.Event { f(&e); return e }
	meta := func(s string) json.RawMessage { return json.RawMessage(s) }
	cost := 0.002
	llm := base("llm-1", agenttrail.SourceLLM, "chat.completions")
	llm.ResourceType, llm.ResourceID, llm.StatusCode = agenttrail.ResourceTypeModel, "claude-sonnet-4", 200
	llm.TraceID, llm.SpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	if err := llm.SetLLM(agenttrail.LLM{Provider: "anthropic", Model: "claude-sonnet-4", InputTokens: 1200, OutputTokens: 340,
		CacheReadTokens: 800, CostUSD: &cost, Stream: true}); err != nil {
		t.Fatal(err)
	}
	llmNoProvider := with(llm, func(e *agenttrail.Event) {
		e.ID = "llm-2"
		if err := e.SetLLM(agenttrail.LLM{Model: "local-llama"}); err != nil {
			t.Fatal(err)
		}
	})
	llmHuge := with(llm, func(e *agenttrail.Event) {
		e.ID = "llm-3"
		e.Seq = math.MaxInt64 // past OCSF's 32-bit sequence
		if err := e.SetLLM(agenttrail.LLM{Provider: "openai", Model: "gpt-4o", InputTokens: agenttrail.MaxLLMTokens, CacheReadTokens: agenttrail.MaxLLMTokens,
			CacheWriteTokens: agenttrail.MaxLLMTokens, OutputTokens: agenttrail.MaxLLMTokens}); err != nil {
			t.Fatal(err)
		}
	})
	llmNoModel := with(base("llm-4", agenttrail.SourceLLM, "models.list"), func(e *agenttrail.Event) {
		e.Result, e.StatusCode = agenttrail.ResultError, 502
	})
	events := []agenttrail.Event{
		with(base("mcp-1", agenttrail.SourceMCP, "tools/call"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID, e.Metadata = "tool", "github.create_issue", meta(`{"mcp":{"server":"github","tool":"create_issue"}}`)
		}),
		with(base("k8s-1", agenttrail.SourceKube, "DELETE /api/v1/namespaces/prod/pods/web-1"), func(e *agenttrail.Event) {
			e.Result, e.StatusCode, e.ResourceType, e.ResourceID = agenttrail.ResultDenied, 403, "pods", "prod/web-1"
		}),
		with(base("aws-1", agenttrail.SourceAWS, "s3:GetObject"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID, e.StatusCode = "s3-object", "arn:aws:s3:::bucket/key", 200
		}),
		llm, llmNoProvider, llmHuge, llmNoModel,
		with(base("shell-1", agenttrail.SourceShell, "shell_exec"), func(e *agenttrail.Event) {
			e.Result, e.ResourceType, e.ResourceID = agenttrail.ResultFailure, "command", "go test ./..."
			e.TraceID, e.SpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "1111111111111111"
			e.Metadata = meta(`{"shell":{"command":"/usr/bin/go","args":["test","./..."],"cwd":"/src","exit_code":1,"stdout":"","stderr":"FAIL","host":"ci-7"}}`)
		}),
		with(base("shell-2", agenttrail.SourceShell, "shell_exec"), func(e *agenttrail.Event) {
			e.Result, e.ResourceType, e.ResourceID = agenttrail.ResultFailure, "command", "sleep 9"
			e.Metadata = meta(`{"shell":{"command":"sleep","args":["9"],"exit_code":137,"signal":"killed"}}`)
		}),
		with(base("sbx-1", agenttrail.SourceSandbox, "file_create"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID = "file", "/work/out.txt"
			e.Metadata = meta(`{"sandbox":{"container_id":"c0ffee","op":"file_create","path":"/work/out.txt","size":12}}`)
		}),
		with(base("sbx-2", agenttrail.SourceSandbox, "file_write"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID = "file", "/work/out.txt"
			e.Metadata = meta(`{"sandbox":{"container_id":"c0ffee","op":"file_write","path":"/work/out.txt","size":9007199254740993,"writes":3}}`)
		}),
		with(base("sbx-3", agenttrail.SourceSandbox, "file_delete"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID = "file", "/work/tmp"
			e.Metadata = meta(`{"sandbox":{"container_id":"c0ffee","op":"file_delete","path":"/work/tmp","dir":true}}`)
		}),
		with(base("sbx-4", agenttrail.SourceSandbox, "file_rename"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID = "file", "/work/a"
			e.Metadata = meta(`{"sandbox":{"container_id":"c0ffee","op":"file_rename","path":"/work/a","new_path":"/work/b"}}`)
		}),
		with(base("sbx-5", agenttrail.SourceSandbox, "file_chmod"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID = "file", "/work/run.sh"
			e.Metadata = meta(`{"sandbox":{"op":"file_chmod","path":"/work/run.sh","mode":"0755"}}`)
		}),
		with(base("sbx-6", agenttrail.SourceSandbox, "container.file_read"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID = "container", "c0ffee"
			e.Metadata = meta(`{"sandbox":{"container_id":"c0ffee","name":"agent-box","op":"file_read","path":"/etc/passwd","api_path":"/v1.47/containers/c0ffee/archive"}}`)
		}),
		with(base("sbx-7", agenttrail.SourceSandbox, "container.exec"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID = "container", "c0ffee"
			e.Metadata = meta(`{"sandbox":{"container_id":"c0ffee","op":"exec","command":"sh -c ls"}}`)
		}),
		with(base("sbx-8", agenttrail.SourceSandbox, "file_events_lost"), func(e *agenttrail.Event) {
			e.ResourceType, e.Result = "file", agenttrail.ResultError
		}),
		with(base("egress-1", agenttrail.SourceEgress, "GET https://api.github.com:8443/repos/x?page=2"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID, e.StatusCode = "domain", "api.github.com", 200
			e.TraceID, e.SpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "2222222222222222"
			e.Metadata = meta(`{"http":{"domain":"api.github.com","port":8443,"method":"GET","path":"/repos/x","bytes_in":5120,"bytes_out":310,"tls":true}}`)
		}),
		with(base("egress-2", agenttrail.SourceEgress, "CONNECT evil.example:443"), func(e *agenttrail.Event) {
			e.ResourceType, e.ResourceID, e.Result, e.StatusCode = "domain", "evil.example", agenttrail.ResultDenied, 403
			e.Metadata = meta(`{"http":{"domain":"evil.example","port":443,"method":"CONNECT","rule":"deny:*.example","tls":false}}`)
		}),
		with(base("egress-3", agenttrail.SourceEgress, "BREW coffee://pot"), func(e *agenttrail.Event) {
			e.Result, e.Metadata = agenttrail.ResultError, meta(`{"http":{"domain":"pot","port":99999,"method":"BREW"}}`)
		}),
		with(base("agent-1", agenttrail.SourceAgent, "heartbeat"), func(e *agenttrail.Event) {}),
		with(base("audit-1", agenttrail.SourceAudit, "retention.run"), func(e *agenttrail.Event) {
			e.ActorType, e.ActorID, e.ResourceType = agenttrail.ActorSystem, "agenttrail-retention", "store"
			e.Metadata = meta(`{"retention":{"deleted":3}}`)
		}),
		with(base("custom-1", "ci-runner-2", "deploy.approve"), func(e *agenttrail.Event) { e.Result = "" }),
		// Only what Validate requires: no optional field at all.
		{ID: "min-1", Time: t0, ActorType: agenttrail.ActorUser, ActorID: "bob", Source: agenttrail.SourceMCP, Action: "x", Result: agenttrail.ResultSuccess},
		{ID: "min-2", Time: t0, ActorType: agenttrail.ActorUser, ActorID: "bob", Source: agenttrail.SourceShell, Action: "shell_exec", Result: agenttrail.ResultSuccess},
		{ID: "min-3", Time: t0, ActorType: agenttrail.ActorUser, ActorID: "bob", Source: agenttrail.SourceEgress, Action: "GET", Result: agenttrail.ResultSuccess},
		{ID: "min-4", Time: t0, ActorType: agenttrail.ActorUser, ActorID: "bob", Source: agenttrail.SourceSandbox, Action: "file_write", ResourceType: "file", ResourceID: "x", Result: agenttrail.ResultSuccess},
		// Huge values: a 1 MiB description, an unknown action, the largest
		// duration and status code, metadata of the wrong shape.
		with(base("huge-1", agenttrail.SourceKube, "FROBNICATE /x"), func(e *agenttrail.Event) {
			e.Description, e.DurationMS, e.StatusCode = strings.Repeat("é", 1<<19), 1e15, math.MaxInt32
			e.Metadata = meta(`{"llm":"not an object","shell":[1],"http":{"port":"x"}}`)
		}),
		with(base("huge-2", agenttrail.SourceShell, "shell_exec"), func(e *agenttrail.Event) {
			e.Seq, e.ProducerSeq = 1<<40, 1<<62
			e.Metadata = meta(`{"shell":{"command":"x","exit_code":9999999999}}`)
		}),
	}
	want := []int{6003, 6003, 6003, 6003, 6003, 6003, 6003, 1007, 1007, 1001, 1001, 1001, 1001, 1001, 1001, 6003, 6003,
		4002, 4002, 4002, 6003, 6003, 6003, 6003, 1007, 4002, 1001, 6003, 1007}
	if len(want) != len(events) {
		t.Fatalf("%d events, %d classes", len(events), len(want))
	}
	return events, want
}

// ocsfLines writes events in the ocsf format and returns its lines, each
// checked against the OCSF 1.8.0 definitions.
func ocsfLines(t *testing.T, s *ocsfSchema, events []agenttrail.Event) [][]byte {
	t.Helper()
	out := writeAll(t, OCSF, events)
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		if problems := s.validate(line); len(problems) > 0 {
			e := events[len(lines)]
			t.Errorf("event %s (%s %q) is not valid OCSF %s:\n  %s", e.ID, e.Source, e.Action, OCSFVersion, strings.Join(problems, "\n  "))
		}
		lines = append(lines, line)
	}
	if len(lines) != len(events) {
		t.Fatalf("%d OCSF lines for %d events", len(lines), len(events))
	}
	return lines
}

// TestOCSFClassesValid: every surface's events, and the edge cases, are
// valid OCSF 1.8.0 events of the class their surface maps to.
func TestOCSFClassesValid(t *testing.T) {
	s := loadOCSFSchema(t)
	events, classes := surfaceEvents(t)
	lines := ocsfLines(t, s, events)
	for i, line := range lines {
		var o OCSFEvent
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatal(err)
		}
		if o.ClassUID != classes[i] {
			t.Errorf("event %s (%s %q): class %d, want %d", events[i].ID, events[i].Source, events[i].Action, o.ClassUID, classes[i])
		}
	}
	// The generated trail of every surface, and the sample with its
	// hostile strings.
	ocsfLines(t, s, storetest.Events(3, 2000, t0, 24*time.Hour))
	ocsfLines(t, s, sample(t))
}

// TestOCSFMapping checks what each class carries, on the surface events.
func TestOCSFMapping(t *testing.T) {
	events, _ := surfaceEvents(t)
	lines := writeAll(t, OCSF, events)
	got := map[string]OCSFEvent{}
	raw := map[string]map[string]any{}
	for line := range bytes.Lines(lines) {
		var o OCSFEvent
		var m map[string]any
		if err := json.Unmarshal(line, &o); err != nil || json.Unmarshal(line, &m) != nil {
			t.Fatal(err)
		}
		got[o.Metadata.UID], raw[o.Metadata.UID] = o, m
	}
	i64 := func(v int64) *int64 { return &v }
	// An LLM call: the ai_operation profile's model and tokens.
	llm := got["llm-1"]
	if llm.AIModel == nil || *llm.AIModel != (ocsfAIModel{Name: "claude-sonnet-4", AIProvider: "anthropic"}) ||
		llm.MessageContext == nil || *llm.MessageContext.PromptTokens != 2000 || *llm.MessageContext.CompletionTokens != 340 ||
		*llm.MessageContext.TotalTokens != 2340 || llm.MessageContext.Service.Name != "anthropic" ||
		!strings.Contains(strings.Join(llm.Metadata.Profiles, ","), "ai_operation") || llm.API.Operation != "chat.completions" {
		t.Errorf("llm event = %+v %+v %+v", llm.AIModel, llm.MessageContext, llm.Metadata)
	}
	if m := got["llm-2"].AIModel; m == nil || m.AIProvider != "Unknown" || got["llm-2"].MessageContext.PromptTokens != nil {
		t.Errorf("llm without provider or usage = %+v %+v", m, got["llm-2"].MessageContext)
	}
	if h := got["llm-3"]; h.MessageContext.PromptTokens != nil || h.MessageContext.TotalTokens != nil || *h.MessageContext.CompletionTokens != agenttrail.MaxLLMTokens ||
		h.Metadata.Sequence != 0 || h.Unmapped["seq"] != float64(math.MaxInt64) {
		t.Errorf("huge llm event: tokens %+v, sequence %d, unmapped %v", h.MessageContext, h.Metadata.Sequence, h.Unmapped["seq"])
	}
	if got["llm-4"].AIModel != nil || raw["llm-4"]["message_context"] != nil {
		t.Errorf("an LLM event without a model has %+v", got["llm-4"].AIModel)
	}
	// A shell command: Process Activity, Launch.
	sh := got["shell-1"]
	if sh.ActivityID != 1 || sh.Process == nil || *sh.Process != (ocsfProcess{UID: "shell-1", Name: "go", CmdLine: "go test ./...", WorkingDirectory: "/src"}) ||
		sh.ExitCode == nil || *sh.ExitCode != 1 || sh.Device == nil || sh.Device.Hostname != "ci-7" || sh.API != nil ||
		sh.Trace != nil || sh.Unmapped["span_id"] != "1111111111111111" {
		t.Errorf("shell event = %+v %v %+v trace %+v unmapped %v", sh.Process, sh.ExitCode, sh.Device, sh.Trace, sh.Unmapped)
	}
	if h := got["huge-2"]; h.ExitCode != nil || h.Metadata.Sequence != 0 || h.Unmapped["seq"] != float64(1<<40) {
		t.Errorf("huge shell event: exit_code %v, sequence %d", h.ExitCode, h.Metadata.Sequence)
	}
	// Sandbox files: File System Activity.
	for id, want := range map[string]struct {
		act  int
		file ocsfFile
	}{
		"sbx-1": {1, ocsfFile{Name: "out.txt", Path: "/work/out.txt", TypeID: 1, Type: "Regular File", Size: i64(12)}},
		"sbx-3": {4, ocsfFile{Name: "tmp", Path: "/work/tmp", TypeID: 2, Type: "Folder"}},
		"sbx-4": {5, ocsfFile{Name: "a", Path: "/work/a", TypeID: 1, Type: "Regular File"}},
		"sbx-5": {6, ocsfFile{Name: "run.sh", Path: "/work/run.sh", TypeID: 1, Type: "Regular File"}},
		"sbx-6": {2, ocsfFile{Name: "passwd", Path: "/etc/passwd", TypeID: 1, Type: "Regular File"}},
	} {
		o := got[id]
		f := o.File
		if o.ActivityID != want.act || f == nil || f.Name != want.file.Name || f.Path != want.file.Path || f.TypeID != want.file.TypeID ||
			(f.Size == nil) != (want.file.Size == nil) || f.Size != nil && *f.Size != *want.file.Size || o.Device == nil {
			t.Errorf("%s: activity %d file %+v, want %d %+v", id, o.ActivityID, f, want.act, want.file)
		}
	}
	if r := got["sbx-4"].FileResult; r == nil || r.Path != "/work/b" {
		t.Errorf("rename result = %+v", r)
	}
	if d := got["sbx-6"].Device; d.UID != "c0ffee" || d.Name != "agent-box" || d.TypeID != 6 {
		t.Errorf("sandbox device = %+v", d)
	}
	// The forward proxy: HTTP Activity.
	eg := got["egress-1"]
	if eg.ActivityID != 3 || eg.HTTPRequest == nil || eg.HTTPRequest.HTTPMethod != "GET" || eg.HTTPRequest.URL == nil ||
		*eg.HTTPRequest.URL != (ocsfURL{URLString: "https://api.github.com:8443/repos/x?page=2", Scheme: "https", Hostname: "api.github.com", Port: 8443, Path: "/repos/x"}) ||
		eg.HTTPResponse == nil || eg.HTTPResponse.Code != 200 || eg.DstEndpoint == nil || eg.DstEndpoint.Port != 8443 ||
		eg.Traffic == nil || *eg.Traffic != (ocsfTraffic{BytesIn: 5120, BytesOut: 310}) || eg.Trace == nil {
		t.Errorf("egress event = %+v %+v %+v %+v", eg.HTTPRequest, eg.HTTPResponse, eg.DstEndpoint, eg.Traffic)
	}
	if c := got["egress-2"]; c.ActivityID != 1 || c.HTTPRequest.URL != nil || c.StatusDetail != "denied" || c.SeverityID != 3 {
		t.Errorf("CONNECT event = %d %+v %s", c.ActivityID, c.HTTPRequest, c.StatusDetail)
	}
	if b := got["egress-3"]; b.ActivityID != 99 || b.DstEndpoint.Port != 0 {
		t.Errorf("unknown method = %d, port %d", b.ActivityID, b.DstEndpoint.Port)
	}
	// Everything else: API Activity, with a source endpoint.
	for _, id := range []string{"mcp-1", "agent-1", "audit-1", "custom-1", "min-1", "huge-1"} {
		if o := got[id]; o.API == nil || o.SrcEndpoint == nil {
			t.Errorf("%s: api %+v src_endpoint %+v", id, o.API, o.SrcEndpoint)
		}
	}
	if o := got["min-1"]; o.SrcEndpoint.Name != "bob" || o.Unmapped != nil {
		t.Errorf("minimal event: src_endpoint %+v, unmapped %v", o.SrcEndpoint, o.Unmapped)
	}
	if o := got["huge-1"]; o.ActivityID != 99 || o.Duration != 1e15 || len(o.Message) != 1<<20 {
		t.Errorf("huge event: activity %d duration %d message %d bytes", o.ActivityID, o.Duration, len(o.Message))
	}
}

// TestOCSFValidatorCatches: the validator finds each kind of departure
// from the schema, so the tests above can fail.
func TestOCSFValidatorCatches(t *testing.T) {
	s := loadOCSFSchema(t)
	events, _ := surfaceEvents(t)
	lines := ocsfLines(t, s, events[:10])
	for _, c := range []struct {
		line int
		name string
		edit func(m map[string]any)
		want string
	}{
		{0, "required missing", func(m map[string]any) { delete(m, "time") }, "time: required attribute missing"},
		{0, "nested required missing", func(m map[string]any) { delete(m["api"].(map[string]any), "operation") }, "api.operation: required"},
		{0, "src_endpoint missing", func(m map[string]any) { delete(m, "src_endpoint") }, "src_endpoint: required"},
		{0, "unknown attribute", func(m map[string]any) { m["agent"] = "x" }, "agent: not an attribute"},
		{0, "wrong type", func(m map[string]any) { m["time"] = "yesterday" }, "time: "},
		{0, "nested wrong type", func(m map[string]any) { m["actor"].(map[string]any)["user"].(map[string]any)["type_id"] = "1" }, "actor.user.type_id"},
		{0, "enum value", func(m map[string]any) { m["severity_id"] = 7 }, "severity_id: 7 is not a declared value"},
		{0, "activity enum", func(m map[string]any) { m["activity_id"] = 5; m["type_uid"] = 600305 }, "activity_id: 5 is not a declared value"},
		{0, "sibling", func(m map[string]any) { m["status"] = "Failure" }, "status_id: status is Failure"},
		{0, "type_uid", func(m map[string]any) { m["type_uid"] = 600300 }, "type_uid 600300"},
		{0, "category", func(m map[string]any) { m["category_uid"] = 1 }, "category_uid 1"},
		{0, "unknown class", func(m map[string]any) { m["class_uid"] = 9999 }, "class_uid 9999"},
		{0, "32-bit integer", func(m map[string]any) { m["metadata"].(map[string]any)["sequence"] = int64(1) << 40 }, "metadata.sequence"},
		{3, "profile not listed", func(m map[string]any) { m["metadata"].(map[string]any)["profiles"] = []string{"trace"} }, "ai_model: not an attribute"},
		{0, "profile of another class", func(m map[string]any) {
			m["metadata"].(map[string]any)["profiles"] = []string{"trace", "ai_operation", "network_proxy"}
		}, `"network_proxy"`},
		{3, "object required", func(m map[string]any) { delete(m["ai_model"].(map[string]any), "ai_provider") }, "ai_model.ai_provider: required"},
		{3, "constraint", func(m map[string]any) { delete(m["message_context"].(map[string]any), "service") }, "needs at least one of [application service]"},
		{7, "process constraint", func(m map[string]any) { delete(m["process"].(map[string]any), "uid") }, "needs at least one of [pid uid cpid]"},
		{7, "device required", func(m map[string]any) { delete(m, "device") }, "device: required"},
		{9, "file enum", func(m map[string]any) { m["file"].(map[string]any)["type_id"] = 42 }, "file.type_id: 42"},
		{9, "null", func(m map[string]any) { m["message"] = nil }, "message: null"},
	} {
		var m map[string]any
		if err := json.Unmarshal(lines[c.line], &m); err != nil {
			t.Fatal(err)
		}
		c.edit(m)
		b, _ := json.Marshal(m)
		problems := s.validate(b)
		if !strings.Contains(strings.Join(problems, "\n"), c.want) {
			t.Errorf("%s: problems %q, want one with %q", c.name, problems, c.want)
		}
	}
	// The port range, on HTTP Activity.
	var m map[string]any
	_ = json.Unmarshal(ocsfLines(t, s, events[17:18])[0], &m)
	m["dst_endpoint"].(map[string]any)["port"] = 70000
	b, _ := json.Marshal(m)
	if p := strings.Join(s.validate(b), "\n"); !strings.Contains(p, "dst_endpoint.port: 70000 is out of port_t's range") {
		t.Errorf("port 70000: problems %q", p)
	}
}
