package agenttrail

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits bound what one event and one ingest request may hold. The zero
// value means DefaultLimits.
type Limits struct {
	MaxEventBytes   int // one encoded event
	MaxRequestBytes int // one request body
	MaxBatchEvents  int // events in one request
}

// DefaultLimits are the documented limits: 1 MiB an event, 16 MiB and
// 10,000 events a request.
var DefaultLimits = Limits{MaxEventBytes: 1 << 20, MaxRequestBytes: 16 << 20, MaxBatchEvents: 10000}

// Bounds of the LLM usage of one event (metadata.llm). The stores sum the
// counters and the cost of every event into rollups; these bounds keep one
// event far from what a sum can hold (an int64 of tokens, an int64 of
// nano-dollars), so no event, however forged, can make a rollup overflow.
// They are generous for real calls: no model has a context of a billion
// tokens, and no single call costs a million dollars.
const (
	MaxLLMTokens  = 1_000_000_000 // each of the five token counters
	MaxLLMCostUSD = 1_000_000     // cost_usd
)

// Field length limits, in bytes.
const (
	maxIDLen          = 128
	maxNameLen        = 256
	maxActionLen      = 1024
	maxResourceIDLen  = 2048
	maxDescriptionLen = 16384
	maxFutureSkew     = 24 * time.Hour
)

// Normalize fills the defaults a server applies on receipt: a time-sortable
// ID when none was given, Time = now when absent, Org = defaultOrg (then
// DefaultOrg) when absent, ReceivedAt = now. It clears the read-only Seq and LogIndex.
// Times are kept in UTC. Trace and span ids are lowercased: W3C Trace
// Context writes them in lowercase, and an id that differs only in case is
// the same id, so a filter finds it whichever case its producer used.
func (e *Event) Normalize(now time.Time, defaultOrg string) {
	if e.ID == "" {
		e.ID = NewID(now)
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.Org == "" {
		e.Org = defaultOrg
		if e.Org == "" {
			e.Org = DefaultOrg
		}
	}
	e.ReceivedAt = now.UTC()
	e.Seq, e.LogIndex = 0, nil
	e.TraceID = lowerHex(e.TraceID)
	e.SpanID = lowerHex(e.SpanID)
	e.ParentSpanID = lowerHex(e.ParentSpanID)
}

// Validate checks every field of a normalized event (docs/architecture.md, "The
// event") and returns an EINVALID *Error naming the first offending field. now
// bounds how far in the future Time may be (24 h of clock skew). It decodes
// metadata.llm and keeps it for LLM.
func (e *Event) Validate(now time.Time) error {
	if err := checkText("id", e.ID, maxIDLen, true); err != nil {
		return err
	}
	if e.ID == "" {
		return Invalid("id", "is required")
	}
	if e.Time.IsZero() {
		return Invalid("time", "is required")
	}
	if e.Time.Year() < 1970 || e.Time.After(now.Add(maxFutureSkew)) {
		return Invalid("time", "%s is out of range (1970 to 24h from now)", e.Time.Format(time.RFC3339))
	}
	if e.DurationMS < 0 || math.IsNaN(e.DurationMS) || math.IsInf(e.DurationMS, 0) {
		// NaN and Inf cannot come from JSON, but a Go caller can set them,
		// and encoding/json then fails to encode the validated event.
		return Invalid("duration_ms", "must be a finite number, not negative")
	}
	switch e.ActorType {
	case ActorUser, ActorAgent, ActorSystem:
	case "":
		return Invalid("actor_type", "is required")
	default:
		return Invalid("actor_type", "must be user, agent or system, not %q", e.ActorType)
	}
	if e.ActorID == "" {
		return Invalid("actor_id", "is required")
	}
	if err := checkText("actor_id", e.ActorID, maxNameLen, true); err != nil {
		return err
	}
	if err := checkText("actor_name", e.ActorName, maxNameLen, false); err != nil {
		return err
	}
	if e.Source == "" {
		return Invalid("source", "is required")
	}
	if !IsSourceName(e.Source) {
		return Invalid("source", "must be lowercase [a-z0-9-], at most 64 characters, not %q", e.Source)
	}
	if e.Action == "" {
		return Invalid("action", "is required")
	}
	if err := checkText("action", e.Action, maxActionLen, false); err != nil {
		return err
	}
	if err := checkText("resource_type", e.ResourceType, maxNameLen, true); err != nil {
		return err
	}
	if err := checkText("resource_id", e.ResourceID, maxResourceIDLen, false); err != nil {
		return err
	}
	switch {
	case e.Result == "":
		return Invalid("result", "is required")
	case !e.Result.Valid():
		return Invalid("result", "must be success, failure, denied or error, not %q", e.Result)
	}
	if e.StatusCode != 0 && (e.StatusCode < 100 || e.StatusCode > 599) {
		return Invalid("status_code", "must be an HTTP status from 100 to 599, not %d", e.StatusCode)
	}
	// NUL is refused because PostgreSQL text cannot hold it: every store
	// must accept the same events.
	if len(e.Description) > maxDescriptionLen || !utf8.ValidString(e.Description) || strings.IndexByte(e.Description, 0) >= 0 {
		return Invalid("description", "must be valid UTF-8 without NUL, of at most %d bytes", maxDescriptionLen)
	}
	if err := checkScope("org", e.Org); err != nil {
		return err
	}
	if e.Org == "" {
		return Invalid("org", "is required")
	}
	if err := checkScope("project", e.Project); err != nil {
		return err
	}
	if err := checkText("producer_id", e.ProducerID, maxIDLen, true); err != nil {
		return err
	}
	if e.ProducerSeq < 0 {
		return Invalid("producer_seq", "must not be negative")
	}
	if e.ProducerSeq > 0 && e.ProducerID == "" {
		return Invalid("producer_id", "is required when producer_seq is set")
	}
	if err := e.validateTrace(); err != nil {
		return err
	}
	return e.validateMetadata()
}

// Lengths of the W3C Trace Context ids, in hex digits.
const (
	TraceIDLen = 32
	SpanIDLen  = 16
)

// validateTrace checks the trace context and the session: lowercase hex
// ids of their W3C lengths, none all zeros (W3C's invalid id), a span only
// within a trace, and a session of at most 256 bytes of text.
func (e *Event) validateTrace() error {
	if err := checkHexID("trace_id", e.TraceID, TraceIDLen); err != nil {
		return err
	}
	if err := checkHexID("span_id", e.SpanID, SpanIDLen); err != nil {
		return err
	}
	if err := checkHexID("parent_span_id", e.ParentSpanID, SpanIDLen); err != nil {
		return err
	}
	if e.TraceID == "" && e.SpanID != "" {
		return Invalid("trace_id", "is required when span_id is set")
	}
	if e.TraceID == "" && e.ParentSpanID != "" {
		return Invalid("trace_id", "is required when parent_span_id is set")
	}
	if e.ParentSpanID != "" && e.ParentSpanID == e.SpanID {
		return Invalid("parent_span_id", "must differ from span_id: a span is not its own parent")
	}
	return checkText("session_id", e.SessionID, maxNameLen, false)
}

// checkHexID checks that s is empty or n lowercase hex digits, not all zeros.
func checkHexID(field, s string, n int) error {
	if s == "" {
		return nil
	}
	if len(s) != n {
		return Invalid(field, "must be %d lowercase hex digits, not %d characters", n, len(s))
	}
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return Invalid(field, "must be %d lowercase hex digits, not %q", n, s)
		}
		zero = zero && c == '0'
	}
	if zero {
		return Invalid(field, "must not be all zeros (an invalid id in W3C Trace Context)")
	}
	return nil
}

// lowerHex returns s with ASCII upper case letters lowered, and every
// other byte kept, without allocating when it has none.
func lowerHex(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func (e *Event) validateMetadata() error {
	e.llm, e.llmOf = nil, nil
	m := bytes.TrimSpace(e.Metadata)
	if len(m) == 0 || bytes.Equal(m, []byte("null")) {
		e.Metadata = nil
		return nil
	}
	if m[0] != '{' || !json.Valid(m) {
		return Invalid("metadata", "must be a JSON object")
	}
	if !utf8.Valid(m) || hasSurrogateEscape(m) {
		// Repaired as the decoder repairs description and every other
		// string field: invalid UTF-8 and lone UTF-16 surrogates become
		// U+FFFD, so what is stored and exported is valid UTF-8 JSON
		// that strict parsers accept.
		var err error
		if m, err = reencode(m); err != nil {
			return Invalid("metadata", "must be a JSON object: %v", err)
		}
		e.Metadata = m
	}
	l, err := decodeLLM(m)
	if err != nil {
		return err
	}
	if l != nil {
		for _, c := range []struct {
			name string
			v    int64
		}{
			{"input_tokens", l.InputTokens}, {"output_tokens", l.OutputTokens},
			{"cache_read_tokens", l.CacheReadTokens}, {"cache_write_tokens", l.CacheWriteTokens},
			{"reasoning_tokens", l.ReasoningTokens},
		} {
			if c.v < 0 || c.v > MaxLLMTokens {
				return Invalid("metadata.llm."+c.name, "must be from 0 to %d, not %d", MaxLLMTokens, c.v)
			}
		}
		if c := l.CostUSD; c != nil && !(*c >= 0 && *c <= MaxLLMCostUSD) { // NaN fails both
			return Invalid("metadata.llm.cost_usd", "must be from 0 to %d, not %g", MaxLLMCostUSD, *c)
		}
		if err := checkText("metadata.llm.model", l.Model, maxNameLen, false); err != nil {
			return err
		}
	}
	e.llm, e.llmOf = l, e.Metadata
	return nil
}

// hasSurrogateEscape reports whether JSON text holds a \uD800-\uDFFF
// escape: half of a UTF-16 pair, which a strict parser refuses when it
// stands alone.
func hasSurrogateEscape(b []byte) bool {
	for i := bytes.Index(b, []byte(`\u`)); i >= 0 && i+3 < len(b); {
		if c, d := b[i+2]|0x20, b[i+3]|0x20; c == 'd' && d >= '8' && (d <= '9' || d >= 'a' && d <= 'f') {
			return true
		}
		j := bytes.Index(b[i+2:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += 2 + j
	}
	return false
}

// reencode decodes and encodes a JSON value, keeping numbers as written.
// encoding/json replaces invalid UTF-8 and lone surrogates with U+FFFD.
func reencode(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// decodeLLM decodes metadata.llm; it returns nil, nil when there is none.
func decodeLLM(metadata []byte) (*LLM, error) {
	if !bytes.Contains(metadata, []byte(`"llm"`)) {
		return nil, nil
	}
	var m struct {
		LLM *LLM `json:"llm"`
	}
	if err := json.Unmarshal(metadata, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, Invalid("metadata."+te.Field, "must be a %s", te.Type.String())
		}
		return nil, Invalid("metadata.llm", "must be an object of usage counters: %v", err)
	}
	return m.LLM, nil
}

// IsSourceName reports whether s is a valid source: 1–64 characters of
// lowercase [a-z0-9-], starting with a letter or digit.
func IsSourceName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkScope validates an org or project name: at most 128 characters of
// [A-Za-z0-9._-].
func checkScope(field, s string) error {
	if len(s) > maxIDLen {
		return Invalid(field, "must be at most %d characters", maxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return Invalid(field, "must be [A-Za-z0-9._-], not %q", s)
		}
	}
	return nil
}

// checkText validates UTF-8, length and control characters. When noSpace is
// set, whitespace is refused too (identifiers).
func checkText(field, s string, max int, noSpace bool) error {
	if len(s) > max {
		return Invalid(field, "must be at most %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return Invalid(field, "must not contain control characters")
		}
		if noSpace && r == ' ' {
			return Invalid(field, "must not contain spaces")
		}
	}
	return nil
}
