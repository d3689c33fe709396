// Package eventjson encodes and decodes an agenttrail.Event as JSON without
// reflection, with the bytes and the results of encoding/json: ingest
// decodes every event it takes, a sink encodes every event it delivers, and
// the cluster's stream carries every event encoded once and decoded once.
package eventjson

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/agenttrail/agenttrail"
)

// This file is the fast path of ingest decoding. encoding/json decodes an event
// through reflection at a few tens of MB/s, which alone would use most of the
// CPU that the ingest target leaves (docs/architecture.md, "Performance
// targets"). Decode handles the common shape of an event — a flat
// object of known keys, with strings, numbers, null and a metadata object — and
// gives up, returning ok=false, on anything else: an unknown or escaped key, a
// value of the wrong type, a syntax error. The caller then decodes that event
// with encoding/json, so every error, and every edge case of the grammar, is
// exactly encoding/json's. The fast path accepts only input encoding/json
// accepts, with the same result; FuzzDecodeEventFast checks that.

// Decode decodes the JSON object starting at b[i] (no leading space)
// into ev, which must be zero, and returns the offset just after it. It
// reports false, leaving ev in any state, when encoding/json must decide.
func Decode(b []byte, i int, ev *agenttrail.Event) (end int, ok bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		// Key: a plain string, no escapes.
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		ks := i + 1
		ke := ks
		for ke < len(b) && b[ke] != '"' && b[ke] != '\\' && b[ke] >= 0x20 {
			ke++
		}
		if ke >= len(b) || b[ke] != '"' {
			return 0, false
		}
		key := b[ks:ke]
		if i, ok = afterKey(b, ke+1); !ok {
			return 0, false
		}
		if i, ok = decodeField(b, i, key, ev); !ok {
			return 0, false
		}
		var done bool
		if i, done, ok = afterValue(b, i, '}'); !ok || done {
			return i, ok
		}
	}
}

// afterKey skips the colon after an object's key, and the space around it,
// to the start of the member's value.
func afterKey(b []byte, i int) (int, bool) {
	i = SkipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	i = SkipWS(b, i+1)
	return i, i < len(b)
}

// afterValue reads what follows a member of an object or an element of an
// array: a comma (next is the start of the next one) or the closing
// bracket (done, next is the offset after it).
func afterValue(b []byte, i int, closing byte) (next int, done, ok bool) {
	i = SkipWS(b, i)
	if i >= len(b) {
		return 0, false, false
	}
	switch b[i] {
	case ',':
		return SkipWS(b, i+1), false, true
	case closing:
		return i + 1, true, true
	}
	return 0, false, false
}

// decodeField decodes the value at b[i] into ev's field named key.
func decodeField(b []byte, i int, key []byte, ev *agenttrail.Event) (int, bool) {
	if b[i] == 'n' { // null leaves a field as it is, as encoding/json does
		if !isField(key) {
			return 0, false
		}
		return literal(b, i, "null")
	}
	var ok bool
	if p := textField(ev, key); p != nil {
		*p, i, ok = str(b, i)
		return i, ok
	}
	switch string(key) {
	case "time":
		i, ok = timeValue(b, i, &ev.Time)
	case "received_at":
		i, ok = timeValue(b, i, &ev.ReceivedAt)
	case "duration_ms":
		var s []byte
		if s, i, ok = number(b, i); ok {
			var err error
			ev.DurationMS, err = strconv.ParseFloat(string(s), 64)
			ok = err == nil
		}
	case "actor_type":
		var s string
		s, i, ok = str(b, i)
		ev.ActorType = agenttrail.ActorType(s)
	case "result":
		var s string
		s, i, ok = str(b, i)
		ev.Result = agenttrail.Result(s)
	case "status_code":
		var n int64
		n, i, ok = integer(b, i, strconv.IntSize)
		ev.StatusCode = int(n)
	case "metadata":
		start := i
		if i, ok = scanValue(b, i, 0); ok {
			ev.Metadata = append(json.RawMessage(nil), b[start:i]...)
		}
	case "producer_seq":
		ev.ProducerSeq, i, ok = integer(b, i, 64)
	case "seq":
		ev.Seq, i, ok = integer(b, i, 64)
	case "log_index":
		var n int64
		n, i, ok = integer(b, i, 64)
		ev.LogIndex = &n
	}
	return i, ok
}

// textField returns ev's string field named key, or nil when key names no
// string field.
func textField(ev *agenttrail.Event, key []byte) *string {
	switch string(key) {
	case "id":
		return &ev.ID
	case "actor_id":
		return &ev.ActorID
	case "actor_name":
		return &ev.ActorName
	case "source":
		return &ev.Source
	case "action":
		return &ev.Action
	case "resource_type":
		return &ev.ResourceType
	case "resource_id":
		return &ev.ResourceID
	case "description":
		return &ev.Description
	case "org":
		return &ev.Org
	case "project":
		return &ev.Project
	case "producer_id":
		return &ev.ProducerID
	case "trace_id":
		return &ev.TraceID
	case "span_id":
		return &ev.SpanID
	case "parent_span_id":
		return &ev.ParentSpanID
	case "session_id":
		return &ev.SessionID
	}
	return nil
}

// isField reports whether key is the exact JSON name of an Event field.
func isField(key []byte) bool {
	switch string(key) {
	case "id", "time", "duration_ms", "actor_type", "actor_id", "actor_name", "source", "action",
		"resource_type", "resource_id", "result", "status_code", "description", "metadata", "org",
		"project", "producer_id", "producer_seq", "trace_id", "span_id", "parent_span_id", "session_id",
		"seq", "received_at", "log_index":
		return true
	}
	return false
}

// str decodes the JSON string at b[i]. It gives up on escapes, control
// characters and invalid UTF-8, which encoding/json handles its own way.
func str(b []byte, i int) (string, int, bool) {
	if b[i] != '"' {
		return "", 0, false
	}
	s := i + 1
	ascii := true
	j := s
	for ; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			break
		}
		if c == '\\' || c < 0x20 {
			return "", 0, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if j >= len(b) || !ascii && !utf8.Valid(b[s:j]) {
		return "", 0, false
	}
	return intern(b[s:j]), j + 1, true
}

// intern returns the frequent values of low-cardinality fields without
// allocating.
func intern(b []byte) string {
	if s, ok := interned[string(b)]; ok { // the lookup does not allocate
		return s
	}
	return string(b)
}

// interned holds the values most events repeat: actor types, results, the
// built-in sources and the default org.
var interned = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{"", "agent", "user", "system", "success", "failure", "denied", "error",
		agenttrail.SourceMCP, agenttrail.SourceKube, agenttrail.SourceShell, agenttrail.SourceEgress,
		agenttrail.SourceSandbox, agenttrail.SourceAWS, agenttrail.SourceLLM, agenttrail.DefaultOrg} {
		m[s] = s
	}
	return m
}()

// timeValue decodes the JSON string at b[i] as time.Time does.
func timeValue(b []byte, i int, t interface{ UnmarshalJSON([]byte) error }) (int, bool) {
	_, end, ok := str(b, i)
	if !ok || t.UnmarshalJSON(b[i:end]) != nil {
		return 0, false
	}
	return end, true
}

// number returns the JSON number at b[i], checked against the JSON grammar
// (strconv alone would take "01" or "+1").
func number(b []byte, i int) ([]byte, int, bool) {
	s, ok := i, false
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, 0, false
	}
	if i < len(b) && b[i] == '.' {
		if i, ok = digits(b, i+1); !ok {
			return nil, 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digits(b, i); !ok {
			return nil, 0, false
		}
	}
	return b[s:i], i, true
}

// digits skips the one or more decimal digits at b[i].
func digits(b []byte, i int) (int, bool) {
	d := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i, i > d
}

// integer decodes the JSON number at b[i] into an integer of bits bits.
// A fraction or exponent is left to encoding/json, which refuses it.
func integer(b []byte, i int, bits int) (int64, int, bool) {
	s, end, ok := number(b, i)
	if !ok {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(string(s), 10, bits)
	if err != nil {
		return 0, 0, false
	}
	return n, end, true
}

// maxDepth bounds the nesting scanValue follows; deeper metadata takes the
// slow path, where encoding/json applies its own limit.
const maxDepth = 64

// scanValue checks the JSON value at b[i] against the JSON grammar, as
// json.Valid does (it does not check UTF-8 either), and returns the offset
// just after it.
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch c := b[i]; c {
	case '"':
		return scanString(b, i)
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				if i, ok = scanString(b, i); !ok {
					return 0, false
				}
				if i, ok = afterKey(b, i); !ok {
					return 0, false
				}
			}
			if i, ok = scanValue(b, i, depth+1); !ok {
				return 0, false
			}
			var done bool
			if i, done, ok = afterValue(b, i, closing); !ok || done {
				return i, ok
			}
		}
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	default:
		_, end, ok := number(b, i)
		return end, ok
	}
}

// scanString checks the JSON string at b[i] and returns the offset after
// it.
func scanString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			j++
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[j+1 : j+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return 0, false
					}
				}
				j += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return 0, false
}

func SkipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}
