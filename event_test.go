package agenttrail_test

import (
	"encoding/json"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

func TestEventWireFormat(t *testing.T) {
	e := validEvent()
	e.Seq = 9
	b, err := json.Marshal(&e)
	if err != nil {
		t.Fatalf("Marshal error = %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Unmarshal(%s) error = %v", b, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"action", "actor_id", "actor_name", "actor_type", "description", "duration_ms", "id", "metadata",
		"org", "parent_span_id", "producer_id", "producer_seq", "project", "received_at", "resource_id", "resource_type", "result",
		"seq", "session_id", "source", "span_id", "status_code", "time", "trace_id"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("Marshal(event) keys = %v, want %v", keys, want)
	}
	if got := string(m["time"]); got != `"2025-06-01T11:59:00Z"` {
		t.Errorf("Marshal(event) time = %s, want RFC 3339", got)
	}

	b, err = json.Marshal(&agenttrail.Event{ActorType: agenttrail.ActorUser, ActorID: "u", Source: "shell", Action: "ls", Result: agenttrail.ResultSuccess})
	if err != nil {
		t.Fatalf("Marshal error = %v", err)
	}
	if want := `{"actor_type":"user","actor_id":"u","source":"shell","action":"ls","result":"success"}`; string(b) != want {
		t.Errorf("Marshal(minimal event) = %s, want %s", b, want)
	}
}

func TestEventLLM(t *testing.T) {
	for _, c := range []struct {
		name     string
		metadata string
		want     agenttrail.LLM
		ok       bool
	}{
		{"none", ``, agenttrail.LLM{}, false},
		{"other keys", `{"shell":{"exit_code":0}}`, agenttrail.LLM{}, false},
		{"null", `{"llm":null}`, agenttrail.LLM{}, false},
		{"bad", `{"llm":{"input_tokens":"x"}}`, agenttrail.LLM{}, false},
		{"usage", `{"llm":{"provider":"openai","model":"gpt","input_tokens":5,"output_tokens":6,"cache_read_tokens":7,` +
			`"cache_write_tokens":8,"reasoning_tokens":9,"cost_usd":0.25,"stream":true}}`,
			agenttrail.LLM{Provider: "openai", Model: "gpt", InputTokens: 5, OutputTokens: 6, CacheReadTokens: 7,
				CacheWriteTokens: 8, ReasoningTokens: 9, CostUSD: ptr(0.25), Stream: true}, true},
	} {
		e := agenttrail.Event{Metadata: json.RawMessage(c.metadata)}
		got, ok := e.LLM()
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("LLM(%s) = %+v, %v, want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// TestEventLLMFollowsMetadata replaces the metadata of a validated event:
// LLM must report the new metadata.llm, never the one Validate decoded.
func TestEventLLMFollowsMetadata(t *testing.T) {
	now := time.Now()
	e := agenttrail.Event{ActorType: agenttrail.ActorAgent, ActorID: "a", Source: "llm-proxy", Action: "chat", Result: agenttrail.ResultSuccess,
		Metadata: json.RawMessage(`{"llm":{"model":"before","input_tokens":1}}`)}
	e.Normalize(now, "")
	if err := e.Validate(now); err != nil {
		t.Fatal(err)
	}
	e.Metadata = json.RawMessage(`{"llm":{"model":"after","input_tokens":2}}`)
	if l, ok := e.LLM(); !ok || l.Model != "after" || l.InputTokens != 2 {
		t.Errorf("LLM() after replacing metadata = %+v, %v, want model after, 2 input tokens", l, ok)
	}
	e.Metadata = nil
	if l, ok := e.LLM(); ok {
		t.Errorf("LLM() after removing metadata = %+v, true, want none", l)
	}
}

// TestEventLLMConcurrent reads metadata.llm of one event from several
// goroutines, as a store's writer does; under -race it fails if LLM writes
// to the event.
func TestEventLLMConcurrent(t *testing.T) {
	e := agenttrail.Event{Metadata: json.RawMessage(`{"llm":{"model":"m","input_tokens":3}}`)}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if l, ok := e.LLM(); !ok || l.InputTokens != 3 {
				t.Errorf("LLM() = %+v, %v", l, ok)
			}
		})
	}
	wg.Wait()
}

func ptr(f float64) *float64 { return &f }

func TestLLMCost(t *testing.T) {
	if got := (agenttrail.LLM{}).Cost(); got != 0 {
		t.Errorf("LLM{}.Cost() = %v, want 0", got)
	}
	if got := (agenttrail.LLM{CostUSD: ptr(1.5)}).Cost(); got != 1.5 {
		t.Errorf("LLM{CostUSD: 1.5}.Cost() = %v, want 1.5", got)
	}
}

func TestSetMetadataKeepsOtherKeys(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty", ``, `{"llm":{"model":"m","input_tokens":3}}`},
		{"null", `null`, `{"llm":{"model":"m","input_tokens":3}}`},
		{"others", `{"b":[1,2],"a":{"x":"y"}}`, `{"a":{"x":"y"},"b":[1,2],"llm":{"model":"m","input_tokens":3}}`},
		{"replaced", `{"llm":{"model":"old","output_tokens":9},"z":1}`, `{"llm":{"model":"m","input_tokens":3},"z":1}`},
	} {
		e := agenttrail.Event{Metadata: json.RawMessage(c.in)}
		if _, ok := e.LLM(); c.name == "replaced" && !ok {
			t.Fatalf("LLM(%s) ok = false before SetLLM", c.name)
		}
		if err := e.SetLLM(agenttrail.LLM{Model: "m", InputTokens: 3}); err != nil {
			t.Fatalf("SetLLM(%s) error = %v", c.name, err)
		}
		if string(e.Metadata) != c.want {
			t.Errorf("SetLLM(%s) metadata = %s, want %s", c.name, e.Metadata, c.want)
		}
		if l, ok := e.LLM(); !ok || l.Model != "m" || l.OutputTokens != 0 {
			t.Errorf("SetLLM(%s) then LLM() = %+v, %v, want the new usage (the cache is dropped)", c.name, l, ok)
		}
	}

	e := agenttrail.Event{Metadata: json.RawMessage(`{"llm":{"model":"m"}}`)}
	if err := e.SetMetadata("shell", map[string]int{"exit_code": 2}); err != nil {
		t.Fatalf("SetMetadata error = %v", err)
	}
	if want := `{"llm":{"model":"m"},"shell":{"exit_code":2}}`; string(e.Metadata) != want {
		t.Errorf("SetMetadata(shell) metadata = %s, want %s", e.Metadata, want)
	}
}

func TestSetMetadataErrors(t *testing.T) {
	for _, c := range []struct {
		name, metadata, key string
		value               any
		field               string
	}{
		{"array metadata", `[1]`, "k", 1, "metadata"},
		{"unencodable value", `{}`, "k", make(chan int), "metadata.k"},
		{"NaN cost", `{}`, "llm", agenttrail.LLM{CostUSD: ptr(nan())}, "metadata.llm"},
	} {
		e := agenttrail.Event{Metadata: json.RawMessage(c.metadata)}
		err := e.SetMetadata(c.key, c.value)
		if field := agenttrail.ErrorField(err); err == nil || field != c.field {
			t.Errorf("SetMetadata(%s) error = %v, want field %q", c.name, err, c.field)
		}
		if string(e.Metadata) != c.metadata {
			t.Errorf("SetMetadata(%s) changed metadata to %s", c.name, e.Metadata)
		}
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestDimensionValue(t *testing.T) {
	e := validEvent()
	for _, c := range []struct {
		d    agenttrail.Dimension
		want string
	}{
		{agenttrail.DimSource, "llm-proxy"}, {agenttrail.DimActorType, "agent"}, {agenttrail.DimActorID, "agent-7"},
		{agenttrail.DimResult, "success"}, {agenttrail.DimAction, "chat.completions"}, {agenttrail.DimResourceType, "model"},
		{agenttrail.DimOrg, "acme"}, {agenttrail.DimProject, "release.v2_x-1"}, {agenttrail.DimModel, "claude"},
		{agenttrail.Dimension("nope"), ""},
	} {
		if got := e.DimensionValue(c.d); got != c.want {
			t.Errorf("DimensionValue(%q) = %q, want %q", c.d, got, c.want)
		}
	}
	plain := agenttrail.Event{Metadata: json.RawMessage(`{"shell":{}}`)}
	if got := plain.DimensionValue(agenttrail.DimModel); got != "" {
		t.Errorf("DimensionValue(model) of a non-LLM event = %q, want \"\"", got)
	}
	for _, d := range agenttrail.Dimensions {
		if !d.Valid() {
			t.Errorf("Dimension(%q).Valid() = false, want true", d)
		}
	}
	if agenttrail.Dimension("time").Valid() {
		t.Error(`Dimension("time").Valid() = true, want false`)
	}
}
