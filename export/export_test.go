package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 891_234_000, time.UTC)

// hostile holds values that attack each format: CSV formulas, CEF
// delimiters and escapes, line breaks, quotes and non-ASCII text.
var hostile = []string{
	"=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tlead", "\rlead", "'quoted",
	"''double", "a|b\\c", "k=v cs1=forged", "line1\nline2\r\n", `"q"`, "é ü 日本", "|", "\\", "=",
}

// sample returns events that exercise every field, with hostile text.
func sample(t testing.TB) []agenttrail.Event {
	t.Helper()
	cost := 0.0125
	llm := agenttrail.Event{
		ID: "01J-llm", Time: t0, DurationMS: 812.5, ActorType: agenttrail.ActorAgent, ActorID: "agent-7",
		ActorName: "Coder", Source: agenttrail.SourceLLM, Action: "chat.completions", ResourceType: "model",
		ResourceID: "gpt-x", Result: agenttrail.ResultSuccess, StatusCode: 200, Description: "one call",
		Org: "acme", Project: "p1", ProducerID: "prod-1", ProducerSeq: 42, Seq: 1001, ReceivedAt: t0.Add(time.Second),
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentSpanID: "53995c3f42cd8ad8",
		SessionID: "task 7",
	}
	if err := llm.SetLLM(agenttrail.LLM{Provider: "openai", Model: "gpt-x", InputTokens: 100, OutputTokens: 20,
		CacheReadTokens: 5, CacheWriteTokens: 6, ReasoningTokens: 7, CostUSD: &cost}); err != nil {
		t.Fatal(err)
	}
	events := []agenttrail.Event{llm, {
		ID: "k8s-1", Time: t0.Add(time.Minute), ActorType: agenttrail.ActorUser, ActorID: "alice",
		Source: agenttrail.SourceKube, Action: "DELETE /api/v1/namespaces/default/pods/x", Result: agenttrail.ResultFailure,
		StatusCode: 403, Org: "acme", Seq: 1002, ReceivedAt: t0.Add(time.Minute),
		Metadata:     json.RawMessage(`{"k8s":{"verb":"delete"}}`),
		TraceID:      "4bf92f3577b34da6a3ce929d0e0e4736",
		ParentSpanID: "00f067aa0ba902b7", // a span it did not name itself
	}, {
		ID: "egress-1", Time: t0.Add(2 * time.Minute), ActorType: agenttrail.ActorSystem, ActorID: "proxy",
		Source: agenttrail.SourceEgress, Action: "CONNECT api.github.com:443", Result: agenttrail.ResultError,
		Org: "acme", Seq: 1003, ReceivedAt: t0.Add(2 * time.Minute),
		Metadata: json.RawMessage(`{"http":{"domain":"api.github.com","port":443}}`),
	}}
	for i, h := range hostile {
		events = append(events, agenttrail.Event{
			ID: h, Time: t0.Add(time.Duration(i) * time.Second), ActorType: agenttrail.ActorAgent, ActorID: h,
			ActorName: h, Source: "shell", Action: h, ResourceType: h, ResourceID: h, Result: agenttrail.ResultSuccess,
			Description: h, Org: h, Project: h, ProducerID: h, Seq: int64(2000 + i), ReceivedAt: t0, SessionID: h,
			Metadata: json.RawMessage(`{"shell":{"command":` + strconv.Quote(h) + `}}`),
		})
	}
	return events
}

func writeAll(t testing.TB, format string, events []agenttrail.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(format, &buf)
	if err != nil {
		t.Fatalf("NewWriter(%q): %v", format, err)
	}
	for i := range events {
		if err := w.Write(&events[i]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

func TestNewWriterUnknownFormat(t *testing.T) {
	for _, f := range []string{"", "xml", "CSV", "json"} {
		_, err := NewWriter(f, io.Discard)
		if agenttrail.ErrorCode(err) != agenttrail.EINVALID || agenttrail.ErrorField(err) != "format" {
			t.Errorf("NewWriter(%q) = %v, want EINVALID naming format", f, err)
		}
	}
	for _, f := range Formats() {
		if ContentType(f) == "" || Extension(f) == "" {
			t.Errorf("format %q has no content type or extension", f)
		}
	}
}

func TestNDJSONRoundTrip(t *testing.T) {
	events := sample(t)
	out := writeAll(t, NDJSON, events)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	i := 0
	for ; sc.Scan(); i++ {
		var got agenttrail.Event
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		want, _ := json.Marshal(&events[i])
		have, _ := json.Marshal(&got)
		if !bytes.Equal(want, have) {
			t.Errorf("line %d = %s, want %s", i, have, want)
		}
	}
	if i != len(events) {
		t.Errorf("NDJSON has %d lines, want %d", i, len(events))
	}
}

func TestCSVRoundTrip(t *testing.T) {
	events := sample(t)
	out := writeAll(t, CSV, events)
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("reading CSV: %v", err)
	}
	if len(rows) != len(events)+1 || !reflect.DeepEqual(rows[0], CSVHeader()) {
		t.Fatalf("CSV has %d rows, header %v; want %d and %v", len(rows), rows[0], len(events)+1, CSVHeader())
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for i, e := range events {
		row := rows[i+1]
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("row %d: cell %q starts with a formula character", i, cell)
			}
		}
		get := func(name string) string { return UnneutralizeCell(row[col[name]]) }
		for name, want := range map[string]string{
			"id": e.ID, "actor_type": string(e.ActorType), "actor_id": e.ActorID, "actor_name": e.ActorName,
			"source": e.Source, "action": e.Action, "resource_type": e.ResourceType, "resource_id": e.ResourceID,
			"result": string(e.Result), "description": e.Description, "org": e.Org, "project": e.Project,
			"producer_id": e.ProducerID, "time": e.Time.Format(time.RFC3339Nano),
			"received_at": e.ReceivedAt.Format(time.RFC3339Nano), "seq": strconv.FormatInt(e.Seq, 10),
			"trace_id": e.TraceID, "span_id": e.SpanID, "parent_span_id": e.ParentSpanID, "session_id": e.SessionID,
		} {
			// encoding/csv's reader turns a CR LF inside a quoted cell into
			// LF; the bytes written hold the CR (see TestCSVKeepsCR).
			want = strings.ReplaceAll(want, "\r\n", "\n")
			if got := get(name); got != want {
				t.Errorf("row %d %s = %q, want %q", i, name, got, want)
			}
		}
		if m := get("metadata"); m != string(e.Metadata) {
			t.Errorf("row %d metadata = %q, want %q", i, m, e.Metadata)
		}
	}
	// The LLM columns of the first event.
	r := rows[1]
	for name, want := range map[string]string{
		"model": "gpt-x", "input_tokens": "100", "output_tokens": "20", "cache_read_tokens": "5",
		"cache_write_tokens": "6", "reasoning_tokens": "7", "cost_usd": "0.0125", "status_code": "200",
		"duration_ms": "812.5", "producer_seq": "42",
	} {
		if got := r[col[name]]; got != want {
			t.Errorf("llm row %s = %q, want %q", name, got, want)
		}
	}
	if got := rows[2][col["cost_usd"]]; got != "" {
		t.Errorf("cost_usd of a non-LLM event = %q, want empty", got)
	}
}

func TestCSVEmptyHasHeader(t *testing.T) {
	out := writeAll(t, CSV, nil)
	if want := strings.Join(CSVHeader(), ",") + "\n"; string(out) != want {
		t.Errorf("empty CSV = %q, want %q", out, want)
	}
}

func TestUnneutralizeCell(t *testing.T) {
	for _, s := range append(hostile, "", "'", "plain", "'x") {
		if got := UnneutralizeCell(text(s)); got != s {
			t.Errorf("UnneutralizeCell(text(%q)) = %q", s, got)
		}
	}
}

func TestCSVKeepsCR(t *testing.T) {
	e := agenttrail.Event{ActorID: "a\r\nb", ActorType: agenttrail.ActorAgent, Source: "s", Action: "x", Result: agenttrail.ResultSuccess}
	if out := writeAll(t, CSV, []agenttrail.Event{e}); !bytes.Contains(out, []byte("\"a\r\nb\"")) {
		t.Errorf("CSV = %q, want the quoted cell with its CR LF", out)
	}
}
