package sink

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/agenttrail/agenttrail"
)

// otlp sends batches as OpenTelemetry logs over HTTP: one protobuf
// ExportLogsServiceRequest POSTed to /v1/logs, built with the collector's
// own data model (pdata), so an OpenTelemetry Collector takes the trail
// to any SIEM it exports to. Each event is one log record: the event time
// is the record time, received_at the observed time, the result the
// severity, the payload (the sink's format) the body, and every field of
// the event's JSON an attribute under agenttrail.* (objects such as
// metadata as JSON strings), so fields added to the event later flow
// through too. trace_id and span_id, when an event has them, become the
// record's trace context.
type otlp struct {
	url string
	hc  *http.Client
}

func newOTLP(c Config) (*otlp, error) {
	hc, err := httpClient(c)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.URL) // checked by Config.Check
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/logs"
	}
	return &otlp{url: u.String(), hc: hc}, nil
}

// otlpRequest builds the request body of b.
func otlpRequest(b *Batch) ([]byte, error) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "agenttrail")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("agenttrail")
	recs := sl.LogRecords()
	recs.EnsureCapacity(len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		r := recs.AppendEmpty()
		r.SetTimestamp(pcommon.NewTimestampFromTime(e.Time))
		if !e.ReceivedAt.IsZero() {
			r.SetObservedTimestamp(pcommon.NewTimestampFromTime(e.ReceivedAt))
		}
		num, text := otlpSeverity(e.Result)
		r.SetSeverityNumber(num)
		r.SetSeverityText(text)
		r.Body().SetStr(string(bytes.TrimRight(b.Payloads[i], "\r\n")))
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, err
		}
		attrs := r.Attributes()
		for k, v := range fields {
			putAttr(attrs, "agenttrail."+k, v)
		}
		var ids struct {
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		}
		_ = json.Unmarshal(raw, &ids)
		if t, err := hex.DecodeString(ids.TraceID); err == nil && len(t) == 16 {
			r.SetTraceID(pcommon.TraceID(t))
		}
		if s, err := hex.DecodeString(ids.SpanID); err == nil && len(s) == 8 {
			r.SetSpanID(pcommon.SpanID(s))
		}
	}
	return plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
}

// putAttr sets one attribute from a JSON value: strings, numbers and
// booleans as themselves, anything else as its JSON text.
func putAttr(m pcommon.Map, k string, v json.RawMessage) {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return
	}
	switch t := x.(type) {
	case string:
		m.PutStr(k, t)
	case bool:
		m.PutBool(k, t)
	case float64:
		if t == float64(int64(t)) && !strings.ContainsAny(string(v), ".eE") {
			m.PutInt(k, int64(t))
		} else {
			m.PutDouble(k, t)
		}
	case nil:
	default:
		m.PutStr(k, string(v))
	}
}

// otlpSeverity maps a result to OpenTelemetry's severity numbers.
func otlpSeverity(r agenttrail.Result) (plog.SeverityNumber, string) {
	switch r {
	case agenttrail.ResultDenied, agenttrail.ResultFailure:
		return plog.SeverityNumberWarn, "WARN"
	case agenttrail.ResultError:
		return plog.SeverityNumberError, "ERROR"
	}
	return plog.SeverityNumberInfo, "INFO"
}

func (o *otlp) Deliver(ctx context.Context, b *Batch) (*Result, error) {
	body, err := otlpRequest(b)
	if err != nil {
		return nil, &Refused{Reason: fmt.Sprintf("encode OTLP: %v", err)}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-protobuf")
	status, rh, rb, err := post(ctx, o.hc, o.url, body, h)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		// OTLP/HTTP: 429, 502, 503 and 504 are retryable (statusError
		// retries every 5xx); 400 refuses the request.
		return nil, statusError(status, rh, rb)
	}
	resp := plogotlp.NewExportResponse()
	if len(rb) > 0 && rh.Get("Content-Type") == "application/x-protobuf" {
		if err := resp.UnmarshalProto(rb); err == nil {
			if n := resp.PartialSuccess().RejectedLogRecords(); n > 0 {
				// The receiver does not say which: the batch is refused,
				// and the Runner halves it down to the records at fault.
				return nil, &Refused{Reason: fmt.Sprintf("OTLP receiver rejected %d of %d log records: %s", n, len(b.Events), resp.PartialSuccess().ErrorMessage())}
			}
		}
	}
	return nil, nil
}

func (o *otlp) Close() error {
	o.hc.CloseIdleConnections()
	return nil
}
