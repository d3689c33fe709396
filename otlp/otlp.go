package otlp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/llm"
)

// Mapper maps OTLP requests to events. The zero value maps without prices
// (GenAI usage is then recorded with cost_unknown); it is safe for
// concurrent use.
type Mapper struct {
	prices *llm.Prices
}

// NewMapper returns a Mapper that prices GenAI usage with prices (nil for
// none), the LLM proxy's table.
func NewMapper(prices *llm.Prices) *Mapper { return &Mapper{prices: prices} }

// Batch is the events of one OTLP request, ready for the write path.
type Batch struct {
	// Events are the spans or log records that mapped; At[k] is the index
	// in the request (counted across every resource and scope, in order)
	// of Events[k].
	Events []agenttrail.Event
	At     []int
	// Rejected are the items refused before the write path, by index.
	Rejected []Rejection
}

// Rejection is one span or log record refused, by its index in the request.
type Rejection struct {
	Index int
	Err   error
}

// Spans maps every span of req.
func (m *Mapper) Spans(req *coltracepb.ExportTraceServiceRequest) Batch {
	var b Batch
	i := 0
	for _, rs := range req.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope().GetName()
			for _, sp := range ss.GetSpans() {
				it, err := spanItem(sp, res, scope)
				var e agenttrail.Event
				if err == nil {
					e, err = m.event(it)
					e.ID = SpanEventID(it.trace, it.span)
				}
				b.add(i, e, err)
				i++
			}
		}
	}
	return b
}

// Logs maps every log record of req.
func (m *Mapper) Logs(req *collogspb.ExportLogsServiceRequest) Batch {
	var b Batch
	i := 0
	for _, rl := range req.GetResourceLogs() {
		res := attrMap(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			scope := sl.GetScope().GetName()
			for _, lr := range sl.GetLogRecords() {
				it, err := logItem(lr, rl, res, scope)
				var e agenttrail.Event
				if err == nil {
					e, err = m.event(it)
				}
				if err == nil {
					e.ID = logID(rl, scope, lr)
				}
				b.add(i, e, err)
				i++
			}
		}
	}
	return b
}

func (b *Batch) add(i int, e agenttrail.Event, err error) {
	if err != nil {
		b.Rejected = append(b.Rejected, Rejection{Index: i, Err: err})
		return
	}
	b.Events = append(b.Events, e)
	b.At = append(b.At, i)
}

// spanItem reads a span, checking the ids and times a span must have: an
// OTLP span without them is malformed, and is refused by index.
func spanItem(sp *tracepb.Span, res map[string]any, scope string) (item, error) {
	trace, err := hexID("trace_id", sp.GetTraceId(), 16, true)
	if err != nil {
		return item{}, err
	}
	span, err := hexID("span_id", sp.GetSpanId(), 8, true)
	if err != nil {
		return item{}, err
	}
	parent, err := hexID("parent_span_id", sp.GetParentSpanId(), 8, false)
	if err != nil {
		return item{}, err
	}
	if sp.GetStartTimeUnixNano() == 0 {
		return item{}, agenttrail.Invalid("start_time_unix_nano", "is required")
	}
	if sp.GetEndTimeUnixNano() != 0 && sp.GetEndTimeUnixNano() < sp.GetStartTimeUnixNano() {
		return item{}, agenttrail.Invalid("end_time_unix_nano", "is before start_time_unix_nano")
	}
	kind := strings.ToLower(strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_"))
	return item{
		attrs:   attributes{own: attrMap(sp.GetAttributes()), res: res},
		name:    sp.GetName(),
		kind:    kind,
		scope:   scope,
		start:   unixNano(sp.GetStartTimeUnixNano()),
		end:     unixNano(sp.GetEndTimeUnixNano()),
		failed:  sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
		message: sp.GetStatus().GetMessage(),
		trace:   trace, span: span, parent: parent,
	}, nil
}

// logItem reads a log record. A record emitted inside a span becomes a
// child of it: the record's own span id is derived from its content, so a
// record sent twice is the same event.
func logItem(lr *logspb.LogRecord, rl *logspb.ResourceLogs, res map[string]any, scope string) (item, error) {
	trace, err := hexID("trace_id", lr.GetTraceId(), 16, false)
	if err != nil {
		return item{}, err
	}
	parent, err := hexID("span_id", lr.GetSpanId(), 8, false)
	if err != nil {
		return item{}, err
	}
	if trace == "" && parent != "" {
		return item{}, agenttrail.Invalid("trace_id", "is required when span_id is set")
	}
	t := lr.GetTimeUnixNano()
	if t == 0 {
		t = lr.GetObservedTimeUnixNano()
	}
	it := item{
		attrs:  attributes{own: attrMap(lr.GetAttributes()), res: res},
		name:   lr.GetEventName(),
		kind:   "log",
		scope:  scope,
		start:  unixNano(t),
		failed: lr.GetSeverityNumber() >= logspb.SeverityNumber_SEVERITY_NUMBER_ERROR,
		trace:  trace, parent: parent,
	}
	if it.name == "" {
		it.name = it.attrs.str("event.name")
	}
	if lr.GetBody() != nil {
		it.body = anyValue(lr.GetBody())
		if s, ok := it.body.(string); ok && len(s) <= 1024 {
			it.message = s
		}
	}
	if trace != "" {
		sum := sha256.Sum256([]byte(logID(rl, scope, lr)))
		it.span = hex.EncodeToString(sum[:8])
	}
	return it, nil
}

// logID is a log record's event id: a digest of the record, its scope and
// its resource, so an exporter's retry of the same record stores nothing
// new. Spans need none: a trace and span id name one span.
func logID(rl *logspb.ResourceLogs, scope string, lr *logspb.LogRecord) string {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	b, _ := opts.Marshal(rl.GetResource())
	h.Write(b)
	h.Write([]byte{0})
	h.Write([]byte(scope))
	h.Write([]byte{0})
	b, _ = opts.Marshal(lr)
	h.Write(b)
	return "otel-log-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// SpanEventID is the event id of a span: the same span sent twice is one
// event.
func SpanEventID(traceID, spanID string) string { return "otel-" + traceID + "-" + spanID }

// hexID returns b as lowercase hex after checking it is n bytes and not all
// zeros (W3C's invalid id); empty is allowed unless required.
func hexID(field string, b []byte, n int, required bool) (string, error) {
	if len(b) == 0 {
		if required {
			return "", agenttrail.Invalid(field, "is required")
		}
		return "", nil
	}
	if len(b) != n {
		return "", agenttrail.Invalid(field, "must be %d bytes, not %d", n, len(b))
	}
	for _, c := range b {
		if c != 0 {
			return hex.EncodeToString(b), nil
		}
	}
	return "", agenttrail.Invalid(field, "must not be all zeros")
}

func unixNano(n uint64) time.Time {
	if n == 0 || n > 1<<63-1 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

// Describe joins rejections into the error_message of an OTLP partial
// success, naming each item by its index: "span 3: trace_id: must be 16
// bytes, not 4; span 7: …". At most 20 are named; the count says the rest.
func Describe(noun string, rejected []Rejection) string {
	var b strings.Builder
	for k, r := range rejected {
		if k == 20 {
			fmt.Fprintf(&b, "; and %d more", len(rejected)-k)
			break
		}
		if k > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %d: %s", noun, r.Index, agenttrail.ErrorMessage(r.Err))
	}
	return b.String()
}
