package agenttrail_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// fuzzNow is the fixed clock of the fuzz targets, so that a crasher
// reproduces.
var fuzzNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"actor_type":"agent","actor_id":"a1","source":"shell","action":"shell_exec","result":"success"}`,
		`{"id":"e1","time":"2025-05-31T10:00:00.123456789+02:00","duration_ms":12.5,"actor_type":"user",` +
			`"actor_id":"u","actor_name":"Ann","source":"llm-proxy","action":"chat.completions","resource_type":"model",` +
			`"resource_id":"claude","result":"failure","status_code":429,"description":"rate limited",` +
			`"metadata":{"llm":{"provider":"anthropic","model":"claude","input_tokens":10,"output_tokens":2,"cost_usd":0.5,"stream":true}},` +
			`"org":"acme","project":"p.1","producer_id":"p","producer_seq":7,"seq":99,"received_at":"2020-01-01T00:00:00Z"}`,
		`{"actor_type":"system","actor_id":"s","source":"audit","action":"x","result":"error","metadata":null}`,
		`{"actor_type":"agent","actor_id":"a","source":"mcp-tool","action":"tools/call","result":"success","metadata":{"s":"<\u2028>","n":1e400}}`,
		`{"actor_type":"agent","actor_id":"a","source":"shell","action":"x","result":"success","metadata":{"llm":{"input_tokens":-1}}}`,
		`{"actor_type":"agent","actor_id":"a","source":"shell","action":"x","result":"success","metadata":[1]}`,
		`{"time":"1969-12-31T23:59:59Z"}`,
		`[]`,
		`nul`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e agenttrail.Event
		if json.Unmarshal(data, &e) != nil {
			return
		}
		e.Normalize(fuzzNow, "fuzz")
		err := e.Validate(fuzzNow)
		if err != nil {
			if agenttrail.ErrorCode(err) != agenttrail.EINVALID || agenttrail.ErrorField(err) == "" {
				t.Fatalf("Validate(%s) error = %#v, want EINVALID naming a field", data, err)
			}
			return
		}
		b, err := json.Marshal(&e)
		if err != nil {
			t.Fatalf("Marshal(valid event from %s) error = %v", data, err)
		}
		var back agenttrail.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s) error = %v", b, err)
		}
		if err := back.Validate(fuzzNow); err != nil {
			t.Fatalf("Validate(round trip %s) error = %v, want nil", b, err)
		}
		if !sameJSON(e.Metadata, back.Metadata) {
			t.Fatalf("round trip metadata = %s, want %s", back.Metadata, e.Metadata)
		}
		el, eok := e.LLM()
		bl, bok := back.LLM()
		if eok != bok || !reflect.DeepEqual(el, bl) {
			t.Fatalf("round trip LLM() = %+v, %v, want %+v, %v", bl, bok, el, eok)
		}
		// The rest compares as JSON: the events' caches of metadata.llm are
		// their own, and were compared through LLM.
		e.Metadata, back.Metadata = nil, nil
		if a, b := mustJSON(t, e), mustJSON(t, back); !bytes.Equal(a, b) {
			t.Fatalf("round trip of %s:\n got %s\nwant %s", data, b, a)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%+v) error = %v", v, err)
	}
	return b
}

// sameJSON reports whether a and b hold the same JSON value: encoding may
// change spacing and escapes.
func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
