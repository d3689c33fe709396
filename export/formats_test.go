package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
)

func TestOCSF(t *testing.T) {
	events := sample(t)
	out := writeAll(t, OCSF, events)
	sc := bufio.NewScanner(bytes.NewReader(out))
	i := 0
	for ; sc.Scan(); i++ {
		e := events[i]
		// Required attributes of the base event and API Activity, decoded
		// loosely so a missing one is seen as missing.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		for _, k := range []string{"activity_id", "category_uid", "class_uid", "type_uid", "time", "severity_id", "actor", "metadata", "status_id"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("line %d lacks required attribute %s", i, k)
			}
		}
		var o OCSFEvent
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatal(err)
		}
		wantClass := map[string]int{agenttrail.SourceShell: 1007, agenttrail.SourceEgress: 4002}[e.Source]
		if wantClass == 0 {
			wantClass = 6003
		}
		if o.ClassUID != wantClass || o.CategoryUID != wantClass/1000 || o.TypeUID != wantClass*100+o.ActivityID {
			t.Errorf("line %d class %d category %d type %d activity %d", i, o.ClassUID, o.CategoryUID, o.TypeUID, o.ActivityID)
		}
		if o.Time != e.Time.UnixMilli() || o.Metadata.UID != e.ID || o.Metadata.Version != OCSFVersion ||
			o.Metadata.Product.Name != "agenttrail" || o.Metadata.Product.VendorName != "agenttrail" ||
			o.Metadata.OriginalTime != e.Time.Format("2006-01-02T15:04:05.999999999Z07:00") ||
			o.Metadata.Sequence != e.Seq || o.Metadata.TenantUID != e.Org {
			t.Errorf("line %d time/metadata = %d %+v, want from %+v", i, o.Time, o.Metadata, e)
		}
		if o.Actor.User.UID != e.ActorID || o.Actor.User.Name != e.ActorName || o.Metadata.LogName != e.Source ||
			wantClass == 6003 && (o.API == nil || o.API.Operation != e.Action || o.API.Service.Name != e.Source) {
			t.Errorf("line %d actor/api = %+v %+v", i, o.Actor, o.API)
		}
		wantStatus := map[agenttrail.Result]int{agenttrail.ResultSuccess: 1, agenttrail.ResultFailure: 2, agenttrail.ResultDenied: 2, agenttrail.ResultError: 2}[e.Result]
		if o.StatusID != wantStatus || o.StatusDetail != string(e.Result) {
			t.Errorf("line %d status_id %d detail %q, want %d %q", i, o.StatusID, o.StatusDetail, wantStatus, e.Result)
		}
		if e.StatusCode != 0 && o.StatusCode != strconv.Itoa(e.StatusCode) {
			t.Errorf("line %d status_code %q, want %d", i, o.StatusCode, e.StatusCode)
		}
		if len(o.Resources) != 1 || o.Resources[0].Type != e.ResourceType || o.Resources[0].UID != e.ResourceID {
			if wantClass == 6003 && (e.ResourceType != "" || e.ResourceID != "") {
				t.Errorf("line %d resources = %+v", i, o.Resources)
			}
		}
		if len(e.Metadata) > 0 {
			var want, got any
			_ = json.Unmarshal(e.Metadata, &want)
			b, _ := json.Marshal(o.Unmapped["metadata"])
			_ = json.Unmarshal(b, &got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("line %d unmapped.metadata = %s, want %s", i, b, e.Metadata)
			}
		}
		if o.Metadata.CorrelationUID != e.SessionID {
			t.Errorf("line %d metadata.correlation_uid = %q, want the session %q", i, o.Metadata.CorrelationUID, e.SessionID)
		}
		if (o.Trace != nil) != (e.TraceID != "") || o.Trace != nil && o.Trace.UID != e.TraceID {
			t.Errorf("line %d trace = %+v, want uid %q", i, o.Trace, e.TraceID)
		}
		if e.TraceID != "" && !slices.Contains(o.Metadata.Profiles, "trace") {
			t.Errorf("line %d metadata.profiles = %v, want the trace profile", i, o.Metadata.Profiles)
		}
		if e.Project != "" && o.Unmapped["project"] != e.Project {
			t.Errorf("line %d unmapped = %v, want project %q", i, o.Unmapped, e.Project)
		}
	}
	if i != len(events) {
		t.Fatalf("OCSF has %d lines, want %d", i, len(events))
	}
	// The trace of the sample's first two events, as OCSF 1.8's trace
	// profile has it: a span with its parent, then a parent without a span.
	lines := bytes.Split(out, []byte("\n"))
	var llm, k8s map[string]any
	if err := json.Unmarshal(lines[0], &llm); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &k8s); err != nil {
		t.Fatal(err)
	}
	wantSpan := map[string]any{"uid": "00f067aa0ba902b7", "parent_uid": "53995c3f42cd8ad8",
		"start_time": float64(t0.UnixMilli()), "end_time": float64(t0.UnixMilli() + 813),
		"operation": "chat.completions", "service": map[string]any{"name": "llm-proxy"}}
	if tr, _ := llm["trace"].(map[string]any); tr["uid"] != "4bf92f3577b34da6a3ce929d0e0e4736" || !reflect.DeepEqual(tr["span"], wantSpan) {
		t.Errorf("llm trace = %v, want uid and span %v", llm["trace"], wantSpan)
	}
	if tr, _ := k8s["trace"].(map[string]any); tr["span"] != nil || k8s["unmapped"].(map[string]any)["parent_span_id"] != "00f067aa0ba902b7" {
		t.Errorf("k8s trace = %v, unmapped %v; want no span and the parent in unmapped", k8s["trace"], k8s["unmapped"])
	}
	// The activities of the sample's first three events.
	var first []OCSFEvent
	for _, line := range bytes.SplitN(out, []byte("\n"), 4)[:3] {
		var o OCSFEvent
		_ = json.Unmarshal(line, &o)
		first = append(first, o)
	}
	if first[0].ActivityID != 99 || first[1].ActivityID != 4 || first[1].SeverityID != 3 {
		t.Errorf("activities = %d, %d (severity %d); want 99, 4 (severity 3)", first[0].ActivityID, first[1].ActivityID, first[1].SeverityID)
	}
	if d := first[2].DstEndpoint; d == nil || d.Hostname != "api.github.com" || d.Port != 443 {
		t.Errorf("forward-proxy dst_endpoint = %+v", d)
	}
	if first[0].SrcEndpoint == nil || first[0].SrcEndpoint.UID != "prod-1" || first[0].Duration != 812 {
		t.Errorf("src_endpoint %+v duration %d", first[0].SrcEndpoint, first[0].Duration)
	}
}

func TestActivityOf(t *testing.T) {
	for _, c := range []struct {
		source, action string
		want           int
	}{
		{"k8s-proxy", "GET /api/v1/pods", 2},
		{"k8s-proxy", "PATCH /apis/apps/v1/deployments/x", 3},
		{"forward-proxy", "POST https://x/y", 1},
		{"aws-proxy", "s3:GetObject", 2},
		{"aws-proxy", "ec2:TerminateInstances", 4},
		{"aws-proxy", "iam:CreateUser", 1},
		{"sandbox", "file_write", 3},
		{"mcp-tool", "tools/call", 99},
		{"shell", "GET", 99},
	} {
		e := agenttrail.Event{Source: c.source, Action: c.action}
		if got := activityOf(&e); got != c.want {
			t.Errorf("activityOf(%s, %q) = %d, want %d", c.source, c.action, got, c.want)
		}
	}
}

// parseCEF splits a CEF line into its 7 header fields and its extensions,
// undoing the escapes, as a SIEM's parser would.
func parseCEF(t *testing.T, line string) ([]string, map[string]string) {
	t.Helper()
	var header []string
	var cur strings.Builder
	i := 0
	for ; i < len(line) && len(header) < 7; i++ {
		switch c := line[i]; {
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '|':
			header = append(header, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if len(header) != 7 {
		t.Fatalf("CEF line %q has %d header fields, want 7", line, len(header))
	}
	ext := map[string]string{}
	rest := line[i:]
	// A key starts at the beginning or after a space, and ends at the first
	// unescaped '='.
	var key string
	var val strings.Builder
	flush := func() {
		if key != "" {
			if _, dup := ext[key]; dup {
				t.Errorf("CEF line %q repeats extension %s", line, key)
			}
			ext[key] = strings.TrimRight(val.String(), " ")
		}
		val.Reset()
	}
	for j := 0; j < len(rest); {
		if j == 0 || rest[j-1] == ' ' {
			if k := strings.IndexByte(rest[j:], '='); k > 0 && isKey(rest[j:j+k]) {
				flush()
				key = rest[j : j+k]
				j += k + 1
				continue
			}
		}
		c := rest[j]
		if c == '\\' && j+1 < len(rest) {
			switch rest[j+1] {
			case 'n':
				val.WriteByte('\n')
			case 'r':
				val.WriteByte('\r')
			default:
				val.WriteByte(rest[j+1])
			}
			j += 2
			continue
		}
		if c == '=' {
			t.Errorf("CEF line %q has an unescaped = in a value", line)
		}
		val.WriteByte(c)
		j++
	}
	flush()
	return header, ext
}

func isKey(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

func TestCEF(t *testing.T) {
	events := sample(t)
	out := string(writeAll(t, CEF, events))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("CEF has %d lines, want %d (a value broke a line?)", len(lines), len(events))
	}
	for i, line := range lines {
		e := events[i]
		if strings.ContainsRune(line, '\r') {
			t.Errorf("line %d holds a raw CR", i)
		}
		h, ext := parseCEF(t, line)
		oneLine := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
		wantSev := strconv.Itoa(severityOf(e.Result).cef)
		if h[0] != "CEF:0" || h[1] != "agenttrail" || h[2] != "agenttrail" || h[4] != oneLine(e.Source) || h[5] != oneLine(e.Action) || h[6] != wantSev {
			t.Errorf("line %d header = %q", i, h)
		}
		want := map[string]string{
			"externalId": e.ID, "rt": strconv.FormatInt(e.Time.UnixMilli(), 10), "suid": e.ActorID,
			"act": e.Action, "outcome": string(e.Result), "msg": e.Description,
			"cs1Label": "resource_type", "cs1": e.ResourceType, "cs2Label": "resource_id", "cs2": e.ResourceID,
			"cs5": e.Org, "cn2": strconv.FormatInt(e.Seq, 10),
		}
		if e.ResourceType == "" {
			delete(want, "cs1Label")
		}
		if e.ResourceID == "" {
			delete(want, "cs2Label")
		}
		for k, v := range want {
			if ext[k] != v {
				t.Errorf("line %d %s = %q, want %q\nline: %s", i, k, ext[k], v, line)
			}
		}
		if i == 0 && (ext["flexString1"] != "gpt-x" || ext["cfp2"] != "0.0125" || ext["cn1"] != "200" || ext["suser"] != "Coder") {
			t.Errorf("llm line extensions = %v", ext)
		}
		if ext["flexString2"] != e.SessionID || e.SessionID != "" && ext["flexString2Label"] != "session_id" {
			t.Errorf("line %d flexString2 = %q (label %q), want the session %q", i, ext["flexString2"], ext["flexString2Label"], e.SessionID)
		}
		if ext["agenttrailTraceId"] != e.TraceID || ext["agenttrailSpanId"] != e.SpanID || ext["agenttrailParentSpanId"] != e.ParentSpanID {
			t.Errorf("line %d trace extensions = %q %q %q, want %q %q %q", i, ext["agenttrailTraceId"], ext["agenttrailSpanId"],
				ext["agenttrailParentSpanId"], e.TraceID, e.SpanID, e.ParentSpanID)
		}
	}
}

func TestCEFHeaderEscaping(t *testing.T) {
	for in, want := range map[string]string{`a|b`: `a\|b`, `a\b`: `a\\b`, "a\nb\rc": "a b c", "plain": "plain"} {
		if got := cefHeader(in); got != want {
			t.Errorf("cefHeader(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{`a=b`: `a\=b`, `a\b`: `a\\b`, "a\nb\rc": `a\nb\rc`, "a|b": "a|b"} {
		if got := string(appendCEFValue(nil, in)); got != want {
			t.Errorf("appendCEFValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkWriters(b *testing.B) {
	events := sample(b)[:3]
	for _, f := range Formats() {
		b.Run(f, func(b *testing.B) {
			w, _ := NewWriter(f, discard{})
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := w.Write(&events[i%len(events)]); err != nil {
					b.Fatal(err)
				}
			}
			_ = w.Close()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
