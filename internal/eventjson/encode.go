package eventjson

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/agenttrail/agenttrail"
)

// Append appends the native payload of e: the bytes a
// json.Encoder without HTML escaping writes for it (what GET /v1/export
// writes), with its line break, but without reflection: delivery encodes
// every event it sends. It reports false for what only encoding/json
// decides (a time outside years 0-9999, a duration that is not a number,
// metadata that is not JSON); the caller then encodes that event with it.
func Append(b []byte, e *agenttrail.Event) ([]byte, bool) {
	start := len(b)
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	str := func(k, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		key(k)
		b = appendJSONString(b, v)
	}
	num := func(k string, v int64) {
		if v == 0 {
			return
		}
		key(k)
		b = strconv.AppendInt(b, v, 10)
	}
	ok := true
	tm := func(k string, t time.Time) {
		if t.IsZero() {
			return
		}
		if y := t.Year(); y < 0 || y > 9999 {
			ok = false
			return
		}
		key(k)
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	str("id", e.ID, true)
	tm("time", e.Time)
	if e.DurationMS != 0 {
		if math.IsNaN(e.DurationMS) || math.IsInf(e.DurationMS, 0) {
			return b[:start], false
		}
		key("duration_ms")
		b = appendJSONFloat(b, e.DurationMS)
	}
	str("actor_type", string(e.ActorType), false)
	str("actor_id", e.ActorID, false)
	str("actor_name", e.ActorName, true)
	str("source", e.Source, false)
	str("action", e.Action, false)
	str("resource_type", e.ResourceType, true)
	str("resource_id", e.ResourceID, true)
	str("result", string(e.Result), false)
	num("status_code", int64(e.StatusCode))
	str("description", e.Description, true)
	if len(e.Metadata) > 0 {
		key("metadata")
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, e.Metadata); err != nil {
			return b[:start], false
		}
		b = buf.Bytes()
	}
	str("org", e.Org, true)
	str("project", e.Project, true)
	str("producer_id", e.ProducerID, true)
	num("producer_seq", e.ProducerSeq)
	str("trace_id", e.TraceID, true)
	str("span_id", e.SpanID, true)
	str("parent_span_id", e.ParentSpanID, true)
	str("session_id", e.SessionID, true)
	num("seq", e.Seq)
	tm("received_at", e.ReceivedAt)
	if e.LogIndex != nil {
		key("log_index")
		b = strconv.AppendInt(b, *e.LogIndex, 10)
	}
	if !ok {
		return b[:start], false
	}
	return append(b, '}', '\n'), true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does without HTML
// escaping: '"', '\' and control characters escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	from := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[from:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			from = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[from:i]...)
			b = append(b, `\ufffd`...)
			i += size
			from = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[from:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			from = i
			continue
		}
		i += size
	}
	b = append(b, s[from:]...)
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json writes a float64 (ES6
// number formatting).
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
