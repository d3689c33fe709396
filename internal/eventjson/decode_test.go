package eventjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

// fastSeeds are events the fast path must decode as encoding/json does, or
// leave to it.
var fastSeeds = []string{
	`{}`,
	`{"id":"a","time":"2025-03-12T11:00:00.123456789Z","duration_ms":12.5,"actor_type":"agent","actor_id":"x","actor_name":"Ågent ☃","source":"shell","action":"ls","resource_type":"t","resource_id":"r","result":"success","status_code":200,"description":"d","metadata":{"a":[1,2.5e3,-0,true,false,null,"s\"\\\/\b\f\n\r\t\u00e9"],"b":{}},"org":"o","project":"p","producer_id":"p","producer_seq":3,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","parent_span_id":"53995c3f42cd8ad8","session_id":"task 7","seq":9,"received_at":"2025-03-12T11:00:00+02:00"}`,
	` { "id" : "a" , "status_code" : null , "metadata" : null } `,
	`{"id":"a","id":"b"}`,
	`{"ID":"a"}`,
	`{"id":"a\u0062"}`,
	`{"id":"a","unknown":1}`,
	`{"status_code":1.5}`,
	`{"status_code":01}`,
	`{"status_code":1e2}`,
	`{"status_code":-0}`,
	`{"status_code":99999999999999999999}`,
	`{"duration_ms":1e999}`,
	`{"duration_ms":-1.25E-3}`,
	`{"duration_ms":.5}`,
	`{"duration_ms":1.}`,
	`{"time":"yesterday"}`,
	`{"time":1}`,
	`{"time":"2025-03-12T11:00:00Z"}`,
	`{"actor_id":5}`,
	`{"actor_id":"tab	here"}`,
	"{\"actor_id\":\"bad \xff utf8\"}",
	`{"metadata":{"a":tru}}`,
	`{"metadata":{"a" 1}}`,
	`{"metadata":{"a":1,}}`,
	`{"metadata":[1 2]}`,
	`{"metadata":"\x"}`,
	`{"metadata":"\u12"}`,
	`{"metadata":"\u12g4"}`,
	`{"metadata":5}`,
	`{"metadata":{"deep":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}`,
	`{"id":"a",}`,
	`{"id":"a"`,
	`{"id":"a" "b":1}`,
	`{,}`,
	`[]`,
	`null`,
	`{"seq":-5,"producer_seq":9223372036854775807}`,
	`{"trace_id":7}`,
	`{"span_id":null,"session_id":"a\u0062"}`,
}

// checkFastMatchesStd fails unless decoding b with the fast path either
// gives up or gives what encoding/json gives.
func checkFastMatchesStd(t *testing.T, b []byte) {
	t.Helper()
	var fast agenttrail.Event
	end, ok := Decode(b, 0, &fast)
	if !ok {
		return
	}
	var std agenttrail.Event
	dec := json.NewDecoder(bytes.NewReader(b[:end]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&std); err != nil {
		t.Fatalf("fast path accepted %q, which encoding/json refuses: %v", b[:end], err)
	}
	if int(dec.InputOffset()) != end {
		t.Fatalf("fast path ended %q at %d, encoding/json at %d", b, end, dec.InputOffset())
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("decoding %q: fast path gave %+v, encoding/json %+v", b[:end], fast, std)
	}
}

func TestDecodeEventFastMatchesStd(t *testing.T) {
	for _, s := range fastSeeds {
		checkFastMatchesStd(t, []byte(s))
	}
	// Real events must take the fast path, or it is of no use.
	for _, ev := range storetest.Events(9, 200, time.Now().Add(-time.Hour), time.Hour) {
		b, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		var got agenttrail.Event
		if _, ok := Decode(b, 0, &got); !ok {
			t.Errorf("fast path gave up on a generated event: %s", b)
		}
		checkFastMatchesStd(t, b)
	}
}

func FuzzDecodeEventFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFastMatchesStd(t, b)
	})
}

// TestDecodeEventFastKnowsEveryField keeps the fast path in step with the
// Event type: a field it does not know sends every event carrying it down
// the slow path.
func TestDecodeEventFastKnowsEveryField(t *testing.T) {
	rt := reflect.TypeOf(agenttrail.Event{})
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if !isField([]byte(name)) {
			t.Errorf("isField(%q) = false for a field of Event", name)
		}
	}
	var ev agenttrail.Event
	if _, ok := Decode([]byte(fastSeeds[1]), 0, &ev); !ok {
		t.Errorf("fast path gave up on an event with every field set: %s", fastSeeds[1])
	}
}
