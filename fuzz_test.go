package agenttrail_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
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

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"actor_id=a&actor_id=b&source=shell&since=1h&until=2025-06-01T11:00:00Z&limit=10&sort=seq",
		"actor_type=agent&result=failure&status_code=403&q=Secret&org=acme&project=p&producer_id=x&resource_type=pod&resource_id=r&action=GET",
		"since=7d&interval=day&by=model",
		"interval=week&since=2000-01-01T00:00:00Z",
		"limit=201&sort=-time",
		"cursor=AQOhsgPrPRoAAAAAAAAAAAAFAAAAAAAAAAc",
		"=x&%zz",
		"by=project&by=org",
		"since=15m&since=1h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // the server answers a parse error; what did parse must still be safe
		check := func(name string, err error) {
			t.Helper()
			var e *agenttrail.Error
			if err != nil && (!errors.As(err, &e) || e.Code != agenttrail.EINVALID || e.Field == "") {
				t.Fatalf("%s(%q) error = %#v, want an EINVALID *Error naming a field", name, raw, err)
			}
		}
		q, err := agenttrail.ParseQuery(v, fuzzNow)
		check("ParseQuery", err)
		if err == nil && (q.Limit < 1 || q.Limit > agenttrail.MaxLimit) {
			t.Fatalf("ParseQuery(%q).Limit = %d, want 1 to %d", raw, q.Limit, agenttrail.MaxLimit)
		}
		_, _, err = agenttrail.ParseAggregate(v, fuzzNow)
		check("ParseAggregate", err)
		tf, iv, _, err := agenttrail.ParseTimeseries(v, fuzzNow)
		check("ParseTimeseries", err)
		if err == nil && !tf.Since.Before(tf.Until) {
			t.Fatalf("ParseTimeseries(%q) range [%v, %v), want since before until", raw, tf.Since, tf.Until)
		}
		if err == nil && (iv != agenttrail.Hour && iv != agenttrail.Day && iv != agenttrail.Week) {
			t.Fatalf("ParseTimeseries(%q) interval = %q", raw, iv)
		}
		f1, err := agenttrail.ParseFilter(v, fuzzNow)
		check("ParseFilter", err)
		if err != nil {
			return
		}
		f2, err := agenttrail.ParseFilter(f1.Values(), fuzzNow.Add(time.Hour))
		if err != nil || !reflect.DeepEqual(f1, f2) {
			t.Fatalf("ParseFilter(Values(%+v)) = %+v, %v, want the same filter", f1, f2, err)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	for _, c := range []agenttrail.Cursor{
		{Sort: agenttrail.SortSeq, Position: agenttrail.Position{Seq: 5}, Key: 7},
		{Sort: agenttrail.SortTimeDesc, Position: agenttrail.Position{Time: fuzzNow, Seq: 1 << 40}, Key: 1<<64 - 1},
		{Sort: agenttrail.SortTimeAsc, Position: agenttrail.Position{Time: time.Unix(0, 1)}},
	} {
		f.Add(c.Encode())
	}
	f.Add("")
	f.Add("AQOhsgPrPRoAAAAAAAAAAAAFAAAAAAAAAAd")
	f.Add("AQOhsgPrPRoAAAAAAAAAAAAFAAAAAAAAAAc=")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := agenttrail.DecodeCursor(s)
		if err != nil {
			if agenttrail.ErrorCode(err) != agenttrail.EINVALID || agenttrail.ErrorField(err) != "cursor" {
				t.Fatalf("DecodeCursor(%q) error = %v, want EINVALID naming cursor", s, err)
			}
			return
		}
		if got := c.Encode(); got != s {
			t.Fatalf("DecodeCursor(%q).Encode() = %q, want the same text", s, got)
		}
		if c.Position.Seq < 0 {
			t.Fatalf("DecodeCursor(%q).Position.Seq = %d, want >= 0", s, c.Position.Seq)
		}
	})
}
