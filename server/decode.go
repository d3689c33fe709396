package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/internal/eventjson"
	"github.com/agenttrail/agenttrail/wire"
)

// decoded is an ingest body split into events. events has one slot per
// event of the request, by index; rejected lists the slots that could not be
// decoded (left zero), in index order. reasons holds a metrics reason per
// rejection.
type decoded struct {
	events   []agenttrail.Event
	rejected []wire.Rejection
	reasons  []string
}

func (d *decoded) reject(i int, reason, field, format string, args ...any) {
	d.events[i] = agenttrail.Event{}
	d.rejected = append(d.rejected, wire.Rejection{Index: i, Error: field + ": " + fmt.Sprintf(format, args...)})
	d.reasons = append(d.reasons, reason)
}

// decodeBody splits an ingest body into events: one JSON object, a JSON
// array of objects, or NDJSON (objects separated by newlines). Each event is
// decoded on its own, so one that is malformed is rejected by index and the
// rest are kept; the error is an EINVALID one only when the body as a whole
// cannot be parsed (not JSON at all, or an array whose syntax breaks), and
// ETOOLARGE when it holds more than lim.MaxBatchEvents events.
func decodeBody(body []byte, lim agenttrail.Limits) (*decoded, error) {
	start := eventjson.SkipWS(body, 0)
	if start == len(body) {
		return nil, agenttrail.Invalid("body", "is empty; send an event object, a JSON array of events, or NDJSON")
	}
	switch body[start] {
	case '[':
		return decodeArray(body, lim)
	case '{':
		return decodeStream(body, lim)
	default:
		return nil, agenttrail.Invalid("body", "must be an event object, a JSON array of events, or NDJSON")
	}
}

// decodeArray decodes a JSON array of events. A syntax error anywhere makes
// the rest of the array unreadable, so it fails the whole request.
func decodeArray(body []byte, lim agenttrail.Limits) (*decoded, error) {
	d := &decoded{events: make([]agenttrail.Event, 0, estimateEvents(body))}
	i := eventjson.SkipWS(body, eventjson.SkipWS(body, 0)+1) // after '['
	if i < len(body) && body[i] == ']' {
		return d, checkEnd(body, i+1)
	}
	for {
		n := len(d.events)
		if n >= lim.MaxBatchEvents {
			return nil, tooManyEvents(lim)
		}
		end, err := d.decodeOne(body, i, lim)
		if err != nil {
			return nil, agenttrail.Invalid("body", "is not valid JSON at event %d: %v", n, err)
		}
		i = eventjson.SkipWS(body, end)
		if i >= len(body) {
			return nil, agenttrail.Invalid("body", "is not valid JSON: the array is not closed")
		}
		switch body[i] {
		case ',':
			i = eventjson.SkipWS(body, i+1)
		case ']':
			return d, checkEnd(body, i+1)
		default:
			return nil, agenttrail.Invalid("body", "is not valid JSON: after event %d, want , or ], not %q", n, body[i])
		}
	}
}

func checkEnd(body []byte, i int) error {
	if eventjson.SkipWS(body, i) != len(body) {
		return agenttrail.Invalid("body", "has data after the array")
	}
	return nil
}

// decodeStream decodes one object or NDJSON: values separated by white
// space. A line that is not valid JSON is rejected by index and decoding
// resumes on the next line. A body with a syntax error and no JSON object in
// it (`{not json`, a pretty-printed object with a syntax error) cannot be
// parsed at all: that is the body's error, not an event's.
func decodeStream(body []byte, lim agenttrail.Limits) (*decoded, error) {
	d := &decoded{events: make([]agenttrail.Event, 0, bytes.Count(body, []byte{'\n'})+1)}
	var objects, syntax int // values that are JSON objects; values that are not JSON
	var first error
	for i := eventjson.SkipWS(body, 0); i < len(body); i = eventjson.SkipWS(body, i) {
		n := len(d.events)
		if n >= lim.MaxBatchEvents {
			return nil, tooManyEvents(lim)
		}
		end, err := d.decodeOne(body, i, lim)
		if err == nil {
			if body[i] == '{' {
				objects++
			}
			i = end
			continue
		}
		d.reject(n, rejectInvalid, "event", "is not valid JSON: %v", err)
		if syntax++; first == nil {
			first = err
		}
		nl := bytes.IndexByte(body[i:], '\n')
		if nl < 0 {
			break
		}
		i += nl + 1
	}
	switch {
	case syntax == 0 || objects > 0:
		return d, nil
	case len(d.events) == 1:
		return nil, agenttrail.Invalid("body", "is not valid JSON: %v", first)
	}
	return nil, agenttrail.Invalid("body", "holds no JSON object: it is not valid JSON, nor NDJSON (first error: %v)", first)
}

// decodeOne decodes the value at body[i] as the next event and returns the
// offset after it. A syntax error, after which the value's extent is
// unknown, is returned (the slot is left for the caller to reject); any
// other problem rejects the event by index.
func (d *decoded) decodeOne(body []byte, i int, lim agenttrail.Limits) (end int, syntax error) {
	if i >= len(body) {
		return 0, io.ErrUnexpectedEOF // "[" and nothing after it
	}
	n := len(d.events)
	d.events = append(d.events, agenttrail.Event{})
	ev := &d.events[n]
	end, ok := eventjson.Decode(body, i, ev)
	var err error
	if !ok {
		// The slow path: encoding/json's semantics and errors.
		*ev = agenttrail.Event{}
		dec := newDecoder(body[i:])
		err = dec.Decode(ev)
		if isSyntax(err) {
			*ev = agenttrail.Event{}
			// Nesting deeper than encoding/json follows is no syntax
			// error: the value's extent is found without decoding it, and
			// it is rejected by index like any other bad event.
			e, ok := skipValue(body, i)
			if !ok || !strings.Contains(err.Error(), "exceeded max depth") {
				return 0, err
			}
			d.reject(n, rejectInvalid, "event", "is nested too deeply (at most %d levels)", maxJSONDepth)
			return e, nil
		}
		end = i + int(dec.InputOffset())
	}
	raw := body[i:end]
	switch {
	case body[i] != '{':
		d.reject(n, rejectInvalid, "event", "must be a JSON object")
	case len(raw) > lim.MaxEventBytes:
		d.reject(n, rejectTooLarge, "event", "is %d bytes, over the limit of %d", len(raw), lim.MaxEventBytes)
	case err != nil:
		field, msg := explain(raw, err)
		d.reject(n, rejectInvalid, field, "%s", msg)
	}
	return end, nil
}

// maxJSONDepth is the nesting encoding/json decodes, and so the deepest
// an event may be.
const maxJSONDepth = 10000

// skipValue returns the offset after the JSON object or array at body[i],
// counting brackets outside strings, and false when it does not close.
// It checks no other syntax: it only finds where a value that
// encoding/json refused for its depth ends.
func skipValue(body []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(body); j++ {
		switch body[j] {
		case '"':
			for j++; j < len(body) && body[j] != '"'; j++ {
				if body[j] == '\\' {
					j++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

func newDecoder(b []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(b))
	// A misspelt field must not be dropped silently from an audit record.
	dec.DisallowUnknownFields()
	return dec
}

func isSyntax(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)
}

func tooManyEvents(lim agenttrail.Limits) error {
	return &agenttrail.Error{Code: agenttrail.ETOOLARGE, Field: "body", Message: fmt.Sprintf("holds more than %d events; split it", lim.MaxBatchEvents)}
}

// estimateEvents guesses how many events an array holds, to size the slice
// once: each event object has an "action" key.
func estimateEvents(body []byte) int {
	return bytes.Count(body, []byte(`"action"`)) + 1
}

// explain names the field that made an event fail to decode, with a message
// for people. It is the slow path, taken only for bad events: each key is
// decoded on its own to find the first one (in key order) that fails.
func explain(raw []byte, decodeErr error) (field, msg string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return "event", "must be a JSON object"
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name, _ := json.Marshal(k)
		one := make([]byte, 0, len(name)+len(fields[k])+3)
		one = append(append(append(append(one, '{'), name...), ':'), fields[k]...)
		one = append(one, '}')
		var ev agenttrail.Event
		if err := newDecoder(one).Decode(&ev); err != nil {
			return k, fieldMessage(k, err)
		}
	}
	return "event", decodeErr.Error()
}

// fieldMessage turns a decoding error of field k into a message.
func fieldMessage(k string, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		switch te.Type.Kind() {
		case reflect.String:
			return "must be a string"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return "must be an integer"
		case reflect.Float32, reflect.Float64:
			return "must be a number"
		case reflect.Bool:
			return "must be true or false"
		}
		return "must be a " + te.Type.String()
	}
	if strings.Contains(err.Error(), "unknown field") {
		return "is not an event field"
	}
	switch strings.ToLower(k) {
	case "time", "received_at":
		return "must be an RFC 3339 time such as 2025-01-02T15:04:05.123Z"
	}
	return err.Error()
}
