package export

import (
	"bufio"
	"strconv"
	"strings"

	"github.com/agenttrail/agenttrail"
)

// cefWriter writes one ArcSight CEF line per event:
//
//	CEF:0|agenttrail|agenttrail|VERSION|source|action|severity|extensions
//
// The signature id is the event's source (a stable, low-cardinality class a
// SIEM can key rules on), the name its action, and the severity 3, 5, 6 or
// 7 for success, error, failure and denied (see severityOf). Extensions:
//
//	externalId=id rt=time (epoch ms) suid=actor_id suser=actor_name or actor_id
//	act=action outcome=result msg=description
//	cs1=resource_type cs2=resource_id cs3=actor_type cs4=source cs5=org cs6=project
//	cn1=status_code cn2=seq cfp1=duration_ms flexString1=model cfp2=cost_usd
//	flexString2=session_id agenttrailTraceId=trace_id agenttrailSpanId=span_id
//	agenttrailParentSpanId=parent_span_id
//
// each custom field with its csNLabel/cnNLabel/cfpNLabel/flexStringNLabel
// naming the agenttrail field. The six custom strings were taken before
// events had a trace, so the trace context uses custom keys named as CEF
// asks of vendor keys (vendor, product, name; letters only): SIEMs keep
// them as additional extensions, searchable by name. Header fields escape \ and |; extension values escape
// \ and = and encode CR and LF as \r and \n, so no value can end a field,
// forge an extension or start a new line. Header fields cannot hold line
// breaks in CEF at all: there they become spaces.
type cefWriter struct {
	bw      *bufio.Writer
	version string
	line    []byte
}

func newCEF(bw *bufio.Writer, version string) *cefWriter {
	return &cefWriter{bw: bw, version: cefHeader(version)}
}

func (w *cefWriter) Write(e *agenttrail.Event) error {
	sev := severityOf(e.Result)
	b := append(w.line[:0], "CEF:0|agenttrail|agenttrail|"...)
	b = append(b, w.version...)
	b = append(b, '|')
	b = append(b, cefHeader(e.Source)...)
	b = append(b, '|')
	b = append(b, cefHeader(e.Action)...)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(sev.cef), 10)
	b = append(b, '|')

	ext := extWriter{b: b}
	ext.add("externalId", e.ID)
	if !e.Time.IsZero() {
		ext.add("rt", strconv.FormatInt(e.Time.UnixMilli(), 10))
	}
	ext.add("suid", e.ActorID)
	if e.ActorName != "" {
		ext.add("suser", e.ActorName)
	} else {
		ext.add("suser", e.ActorID)
	}
	ext.add("act", e.Action)
	ext.add("outcome", string(e.Result))
	ext.add("msg", e.Description)
	ext.label("cs1", "resource_type", e.ResourceType)
	ext.label("cs2", "resource_id", e.ResourceID)
	ext.label("cs3", "actor_type", string(e.ActorType))
	ext.label("cs4", "source", e.Source)
	ext.label("cs5", "org", e.Org)
	ext.label("cs6", "project", e.Project)
	if e.StatusCode != 0 {
		ext.label("cn1", "status_code", strconv.Itoa(e.StatusCode))
	}
	if e.Seq != 0 {
		ext.label("cn2", "seq", strconv.FormatInt(e.Seq, 10))
	}
	if e.DurationMS != 0 {
		ext.label("cfp1", "duration_ms", strconv.FormatFloat(e.DurationMS, 'f', -1, 64))
	}
	if l, ok := e.LLM(); ok {
		ext.label("flexString1", "model", l.Model)
		if l.CostUSD != nil {
			ext.label("cfp2", "cost_usd", strconv.FormatFloat(*l.CostUSD, 'f', -1, 64))
		}
	}
	ext.label("flexString2", "session_id", e.SessionID)
	ext.add("agenttrailTraceId", e.TraceID)
	ext.add("agenttrailSpanId", e.SpanID)
	ext.add("agenttrailParentSpanId", e.ParentSpanID)
	b = append(ext.b, '\n')
	w.line = b
	_, err := w.bw.Write(b)
	return err
}

func (w *cefWriter) Flush() error { return w.bw.Flush() }
func (w *cefWriter) Close() error { return w.bw.Flush() }

// extWriter appends space-separated key=value extensions, skipping empty
// values.
type extWriter struct {
	b     []byte
	first bool
}

func (x *extWriter) add(key, value string) {
	if value == "" {
		return
	}
	if x.first {
		x.b = append(x.b, ' ')
	}
	x.first = true
	x.b = append(x.b, key...)
	x.b = append(x.b, '=')
	x.b = appendCEFValue(x.b, value)
}

// label adds a custom field and its label, e.g. cs1Label=resource_type
// cs1=pod.
func (x *extWriter) label(key, name, value string) {
	if value == "" {
		return
	}
	x.add(key+"Label", name)
	x.add(key, value)
}

// cefHeader escapes a header field.
func cefHeader(s string) string {
	if !strings.ContainsAny(s, "\\|\r\n") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case '\r', '\n':
			sb.WriteByte(' ')
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// appendCEFValue appends an escaped extension value.
func appendCEFValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '=':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}
