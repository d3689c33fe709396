package agenttrail_test

import (
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// validEvent returns a normalized event that passes Validate at testNow.
func validEvent() agenttrail.Event {
	return agenttrail.Event{
		ID:           "0197a3b2-0000-7000-8000-000000000001",
		Time:         testNow.Add(-time.Minute),
		DurationMS:   12.5,
		ActorType:    agenttrail.ActorAgent,
		ActorID:      "agent-7",
		ActorName:    "Release bot",
		Source:       agenttrail.SourceLLM,
		Action:       "chat.completions",
		ResourceType: "model",
		ResourceID:   "claude sonnet",
		Result:       agenttrail.ResultSuccess,
		StatusCode:   200,
		Description:  "asked for a summary\nof the release",
		Metadata:     json.RawMessage(`{"llm":{"provider":"anthropic","model":"claude","input_tokens":10,"output_tokens":2,"cost_usd":0.01}}`),
		Org:          "acme",
		Project:      "release.v2_x-1",
		ProducerID:   "producer-1",
		ProducerSeq:  3,
		TraceID:      "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:       "00f067aa0ba902b7",
		ParentSpanID: "53995c3f42cd8ad8",
		SessionID:    "conversation 42: release notes",
		ReceivedAt:   testNow,
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(e *agenttrail.Event)
		field  string // "" when the event is valid
	}{
		{"valid", func(e *agenttrail.Event) {}, ""},
		{"minimal", func(e *agenttrail.Event) {
			*e = agenttrail.Event{ID: "x", Time: testNow, ActorType: agenttrail.ActorUser, ActorID: "u",
				Source: "shell", Action: "ls", Result: agenttrail.ResultError, Org: "o"}
		}, ""},
		{"id missing", func(e *agenttrail.Event) { e.ID = "" }, "id"},
		{"id with a space", func(e *agenttrail.Event) { e.ID = "a b" }, "id"},
		{"id too long", func(e *agenttrail.Event) { e.ID = strings.Repeat("i", 129) }, "id"},
		{"id at the limit", func(e *agenttrail.Event) { e.ID = strings.Repeat("i", 128) }, ""},
		{"id with a control character", func(e *agenttrail.Event) { e.ID = "a\x00b" }, "id"},
		{"id not UTF-8", func(e *agenttrail.Event) { e.ID = "a\xffb" }, "id"},
		{"time missing", func(e *agenttrail.Event) { e.Time = time.Time{} }, "time"},
		{"time before 1970", func(e *agenttrail.Event) { e.Time = time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC) }, "time"},
		{"time 25h ahead", func(e *agenttrail.Event) { e.Time = testNow.Add(25 * time.Hour) }, "time"},
		{"time 23h ahead", func(e *agenttrail.Event) { e.Time = testNow.Add(23 * time.Hour) }, ""},
		{"duration negative", func(e *agenttrail.Event) { e.DurationMS = -1 }, "duration_ms"},
		{"duration NaN", func(e *agenttrail.Event) { e.DurationMS = math.NaN() }, "duration_ms"},
		{"duration infinite", func(e *agenttrail.Event) { e.DurationMS = math.Inf(1) }, "duration_ms"},
		{"actor_type missing", func(e *agenttrail.Event) { e.ActorType = "" }, "actor_type"},
		{"actor_type unknown", func(e *agenttrail.Event) { e.ActorType = "robot" }, "actor_type"},
		{"actor_type system", func(e *agenttrail.Event) { e.ActorType = agenttrail.ActorSystem }, ""},
		{"actor_id missing", func(e *agenttrail.Event) { e.ActorID = "" }, "actor_id"},
		{"actor_id with a space", func(e *agenttrail.Event) { e.ActorID = "agent 7" }, "actor_id"},
		{"actor_id too long", func(e *agenttrail.Event) { e.ActorID = strings.Repeat("a", 257) }, "actor_id"},
		{"actor_name too long", func(e *agenttrail.Event) { e.ActorName = strings.Repeat("n", 257) }, "actor_name"},
		{"actor_name with a newline", func(e *agenttrail.Event) { e.ActorName = "a\nb" }, "actor_name"},
		{"source missing", func(e *agenttrail.Event) { e.Source = "" }, "source"},
		{"source upper case", func(e *agenttrail.Event) { e.Source = "Shell" }, "source"},
		{"source leading dash", func(e *agenttrail.Event) { e.Source = "-shell" }, "source"},
		{"source too long", func(e *agenttrail.Event) { e.Source = strings.Repeat("s", 65) }, "source"},
		{"source custom", func(e *agenttrail.Event) { e.Source = "ci-runner-2" }, ""},
		{"action missing", func(e *agenttrail.Event) { e.Action = "" }, "action"},
		{"action too long", func(e *agenttrail.Event) { e.Action = strings.Repeat("a", 1025) }, "action"},
		{"action with a tab", func(e *agenttrail.Event) { e.Action = "GET\t/x" }, "action"},
		{"action with spaces", func(e *agenttrail.Event) { e.Action = "CONNECT api.github.com:443" }, ""},
		{"resource_type with a space", func(e *agenttrail.Event) { e.ResourceType = "k8s pod" }, "resource_type"},
		{"resource_id too long", func(e *agenttrail.Event) { e.ResourceID = strings.Repeat("r", 2049) }, "resource_id"},
		{"resource_id with DEL", func(e *agenttrail.Event) { e.ResourceID = "a\x7f" }, "resource_id"},
		{"result missing", func(e *agenttrail.Event) { e.Result = "" }, "result"},
		{"result unknown", func(e *agenttrail.Event) { e.Result = "ok" }, "result"},
		{"result failure", func(e *agenttrail.Event) { e.Result = agenttrail.ResultFailure }, ""},
		{"result denied", func(e *agenttrail.Event) { e.Result = agenttrail.ResultDenied }, ""},
		{"result capitalised", func(e *agenttrail.Event) { e.Result = "Denied" }, "result"},
		{"status_code 99", func(e *agenttrail.Event) { e.StatusCode = 99 }, "status_code"},
		{"status_code 600", func(e *agenttrail.Event) { e.StatusCode = 600 }, "status_code"},
		{"status_code none", func(e *agenttrail.Event) { e.StatusCode = 0 }, ""},
		{"description too long", func(e *agenttrail.Event) { e.Description = strings.Repeat("d", 16385) }, "description"},
		{"description not UTF-8", func(e *agenttrail.Event) { e.Description = "\xc3\x28" }, "description"},
		{"org missing", func(e *agenttrail.Event) { e.Org = "" }, "org"},
		{"org with a space", func(e *agenttrail.Event) { e.Org = "acme corp" }, "org"},
		{"org too long", func(e *agenttrail.Event) { e.Org = strings.Repeat("o", 129) }, "org"},
		{"project with a slash", func(e *agenttrail.Event) { e.Project = "a/b" }, "project"},
		{"producer_id with a space", func(e *agenttrail.Event) { e.ProducerID = "p 1" }, "producer_id"},
		{"producer_seq negative", func(e *agenttrail.Event) { e.ProducerSeq = -1 }, "producer_seq"},
		{"producer_seq without producer_id", func(e *agenttrail.Event) { e.ProducerID = "" }, "producer_id"},
		{"metadata array", func(e *agenttrail.Event) { e.Metadata = json.RawMessage(`[1]`) }, "metadata"},
		{"metadata string", func(e *agenttrail.Event) { e.Metadata = json.RawMessage(`"x"`) }, "metadata"},
		{"metadata truncated", func(e *agenttrail.Event) { e.Metadata = json.RawMessage(`{"a":`) }, "metadata"},
		{"metadata null", func(e *agenttrail.Event) { e.Metadata = json.RawMessage(`null`) }, ""},
		{"metadata spaced", func(e *agenttrail.Event) { e.Metadata = json.RawMessage(" {} \n") }, ""},
		{"metadata without llm", func(e *agenttrail.Event) { e.Metadata = json.RawMessage(`{"shell":{"exit_code":1}}`) }, ""},
		{"llm not an object", func(e *agenttrail.Event) { e.Metadata = json.RawMessage(`{"llm":5}`) }, "metadata.llm"},
		{"llm input_tokens negative", llmMeta(`{"input_tokens":-1}`), "metadata.llm.input_tokens"},
		{"llm output_tokens negative", llmMeta(`{"output_tokens":-1}`), "metadata.llm.output_tokens"},
		{"llm cache_read_tokens negative", llmMeta(`{"cache_read_tokens":-1}`), "metadata.llm.cache_read_tokens"},
		{"llm cache_write_tokens negative", llmMeta(`{"cache_write_tokens":-1}`), "metadata.llm.cache_write_tokens"},
		{"llm reasoning_tokens negative", llmMeta(`{"reasoning_tokens":-1}`), "metadata.llm.reasoning_tokens"},
		{"llm cost_usd negative", llmMeta(`{"cost_usd":-0.5}`), "metadata.llm.cost_usd"},
		{"llm input_tokens a string", llmMeta(`{"input_tokens":"10"}`), "metadata.llm.input_tokens"},
		{"llm input_tokens a fraction", llmMeta(`{"input_tokens":1.5}`), "metadata.llm.input_tokens"},
		{"llm stream a string", llmMeta(`{"stream":"yes"}`), "metadata.llm.stream"},
		{"llm model too long", llmMeta(`{"model":"` + strings.Repeat("m", 257) + `"}`), "metadata.llm.model"},
		{"llm zero counters", llmMeta(`{"input_tokens":0,"cost_usd":0}`), ""},
		{"no trace context", func(e *agenttrail.Event) { e.TraceID, e.SpanID, e.ParentSpanID, e.SessionID = "", "", "", "" }, ""},
		{"trace without spans", func(e *agenttrail.Event) { e.SpanID, e.ParentSpanID = "", "" }, ""},
		{"trace_id short", func(e *agenttrail.Event) { e.TraceID = e.TraceID[:31] }, "trace_id"},
		{"trace_id long", func(e *agenttrail.Event) { e.TraceID += "0" }, "trace_id"},
		{"trace_id upper case", func(e *agenttrail.Event) { e.TraceID = strings.ToUpper(e.TraceID) }, "trace_id"},
		{"trace_id not hex", func(e *agenttrail.Event) { e.TraceID = "4bf92f3577b34da6a3ce929d0e0e473g" }, "trace_id"},
		{"trace_id all zeros", func(e *agenttrail.Event) { e.TraceID = strings.Repeat("0", 32) }, "trace_id"},
		{"trace_id UUID", func(e *agenttrail.Event) { e.TraceID = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736" }, "trace_id"},
		{"span_id short", func(e *agenttrail.Event) { e.SpanID = "00f067aa0ba902b" }, "span_id"},
		{"span_id all zeros", func(e *agenttrail.Event) { e.SpanID = "0000000000000000" }, "span_id"},
		{"span_id not hex", func(e *agenttrail.Event) { e.SpanID = "00f067aa0ba902bz" }, "span_id"},
		{"span_id without trace_id", func(e *agenttrail.Event) { e.TraceID, e.ParentSpanID = "", "" }, "trace_id"},
		{"parent_span_id without trace_id", func(e *agenttrail.Event) { e.TraceID, e.SpanID = "", "" }, "trace_id"},
		{"parent_span_id long", func(e *agenttrail.Event) { e.ParentSpanID += "00" }, "parent_span_id"},
		{"parent_span_id all zeros", func(e *agenttrail.Event) { e.ParentSpanID = "0000000000000000" }, "parent_span_id"},
		{"parent_span_id is span_id", func(e *agenttrail.Event) { e.ParentSpanID = e.SpanID }, "parent_span_id"},
		{"parent without span", func(e *agenttrail.Event) { e.SpanID = "" }, ""},
		{"session_id at the limit", func(e *agenttrail.Event) { e.SessionID = strings.Repeat("s", 256) }, ""},
		{"session_id too long", func(e *agenttrail.Event) { e.SessionID = strings.Repeat("s", 257) }, "session_id"},
		{"session_id with a newline", func(e *agenttrail.Event) { e.SessionID = "a\nb" }, "session_id"},
		{"session_id with NUL", func(e *agenttrail.Event) { e.SessionID = "a\x00b" }, "session_id"},
		{"session_id not UTF-8", func(e *agenttrail.Event) { e.SessionID = "a\xffb" }, "session_id"},
		{"session_id in Japanese", func(e *agenttrail.Event) { e.SessionID = "会話-7" }, ""},
	} {
		e := validEvent()
		c.change(&e)
		err := e.Validate(testNow)
		if c.field == "" {
			if err != nil {
				t.Errorf("Validate(%s) error = %v, want nil", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Validate(%s) error = nil, want field %q", c.name, c.field)
			continue
		}
		if code, field := agenttrail.ErrorCode(err), agenttrail.ErrorField(err); code != agenttrail.EINVALID || field != c.field {
			t.Errorf("Validate(%s) error = %v (code %q), want field %q", c.name, err, code, c.field)
		}
	}
}

func llmMeta(llm string) func(e *agenttrail.Event) {
	return func(e *agenttrail.Event) { e.Metadata = json.RawMessage(`{"other":true,"llm":` + llm + `}`) }
}

func TestValidateClearsNullMetadata(t *testing.T) {
	e := validEvent()
	e.Metadata = json.RawMessage(" null ")
	if err := e.Validate(testNow); err != nil {
		t.Fatalf("Validate(null metadata) error = %v", err)
	}
	if e.Metadata != nil {
		t.Errorf("Validate(null metadata) left Metadata = %q, want nil", e.Metadata)
	}
}

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNormalize(t *testing.T) {
	paris := time.FixedZone("CEST", 2*3600)
	for _, c := range []struct {
		name       string
		in         agenttrail.Event
		defaultOrg string
		wantID     string // "" means a new UUIDv7
		wantTime   time.Time
		wantOrg    string
	}{
		{"defaults", agenttrail.Event{Seq: 42}, "acme", "", testNow, "acme"},
		{"default org", agenttrail.Event{}, "", "", testNow, agenttrail.DefaultOrg},
		{"kept", agenttrail.Event{ID: "mine", Time: testNow.Add(-time.Hour), Org: "o", Seq: 1, ReceivedAt: testNow.Add(-time.Hour)},
			"acme", "mine", testNow.Add(-time.Hour), "o"},
		{"zone", agenttrail.Event{Time: time.Date(2025, 6, 1, 9, 30, 0, 0, paris)}, "acme", "",
			time.Date(2025, 6, 1, 7, 30, 0, 0, time.UTC), "acme"},
	} {
		e := c.in
		e.Normalize(testNow.In(paris), c.defaultOrg)
		if c.wantID == "" && !uuidV7.MatchString(e.ID) || c.wantID != "" && e.ID != c.wantID {
			t.Errorf("Normalize(%s).ID = %q, want %s", c.name, e.ID, orUUID(c.wantID))
		}
		if !e.Time.Equal(c.wantTime) || e.Time.Location() != time.UTC {
			t.Errorf("Normalize(%s).Time = %v, want %v in UTC", c.name, e.Time, c.wantTime)
		}
		if e.Org != c.wantOrg {
			t.Errorf("Normalize(%s).Org = %q, want %q", c.name, e.Org, c.wantOrg)
		}
		if !e.ReceivedAt.Equal(testNow) || e.ReceivedAt.Location() != time.UTC {
			t.Errorf("Normalize(%s).ReceivedAt = %v, want %v in UTC", c.name, e.ReceivedAt, testNow)
		}
		if e.Seq != 0 {
			t.Errorf("Normalize(%s).Seq = %d, want 0", c.name, e.Seq)
		}
	}
}

func TestNormalizeLowersTraceContext(t *testing.T) {
	e := validEvent()
	e.TraceID, e.SpanID, e.ParentSpanID = "4BF92F3577B34DA6A3CE929D0E0E4736", "00F067AA0BA902B7", "53995c3f42CD8AD8"
	e.SessionID = "Task-A"
	e.Normalize(testNow, "acme")
	if e.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || e.SpanID != "00f067aa0ba902b7" || e.ParentSpanID != "53995c3f42cd8ad8" {
		t.Errorf("Normalize trace context = %q %q %q, want lowercase", e.TraceID, e.SpanID, e.ParentSpanID)
	}
	if e.SessionID != "Task-A" {
		t.Errorf("Normalize(session_id Task-A) = %q, want it kept as sent", e.SessionID)
	}
	if err := e.Validate(testNow); err != nil {
		t.Errorf("Validate(normalized upper-case trace context) error = %v", err)
	}
}

func orUUID(id string) string {
	if id == "" {
		return "a UUIDv7"
	}
	return id
}

func TestNewIDSortsByTime(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 200; i++ {
		at := testNow.Add(time.Duration(i/4) * time.Millisecond) // four IDs per millisecond
		id := agenttrail.NewID(at)
		if !uuidV7.MatchString(id) {
			t.Fatalf("NewID(%v) = %q, want a UUIDv7", at, id)
		}
		if seen[id] {
			t.Fatalf("NewID(%v) = %q twice", at, id)
		}
		seen[id] = true
		if i%4 == 0 && id <= prev {
			t.Errorf("NewID(%v) = %q, want it after %q, made a millisecond earlier", at, id, prev)
		}
		prev = id
	}
	if id := agenttrail.NewID(testNow); id[:13] != "01972b5c-ee00" {
		t.Errorf("NewID(%v) = %q, want the Unix milliseconds 0x01972b5cee00 first", testNow, id)
	}
}
