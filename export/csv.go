package export

import (
	"bufio"
	"encoding/csv"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail"
)

// CSVHeader returns the header row of the csv format: the event's flat
// fields, the LLM usage of metadata.llm as columns, and the whole metadata
// object as one JSON cell last. Each call returns a new slice.
func CSVHeader() []string {
	return []string{
		"id", "time", "actor_type", "actor_id", "actor_name", "source", "action",
		"resource_type", "resource_id", "result", "status_code", "duration_ms",
		"description", "org", "project", "producer_id", "producer_seq", "seq",
		"received_at", "trace_id", "span_id", "parent_span_id", "session_id", "model", "input_tokens", "output_tokens", "cache_read_tokens",
		"cache_write_tokens", "reasoning_tokens", "cost_usd", "metadata",
	}
}

// csvWriter writes RFC 4180 CSV with a header row. Zero numbers that mean
// "absent" (status_code, duration_ms, producer_seq, token counts, an unknown
// cost) are empty cells.
//
// Spreadsheets run a cell that starts with = + - @, a tab or a CR as a
// formula (CSV injection), and an audit trail records whatever agents sent.
// Every text cell that starts with one of those characters, or with a
// single quote, gets a single quote in front: the spreadsheet shows the
// text, and a program recovers the exact value by removing one leading
// quote from any text cell that starts with one (UnneutralizeCell). Numeric
// and time cells are written by this package and never start with those
// characters. Line breaks inside cells are quoted as RFC 4180 says and kept
// byte for byte (Go's encoding/csv reader turns a CR LF in a cell into LF).
type csvWriter struct {
	bw     *bufio.Writer
	cw     *csv.Writer
	header bool
	row    []string
}

func newCSV(bw *bufio.Writer) *csvWriter {
	return &csvWriter{bw: bw, cw: csv.NewWriter(bw), row: make([]string, 0, len(CSVHeader()))}
}

func (w *csvWriter) Write(e *agenttrail.Event) error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	l, _ := e.LLM()
	cost := ""
	if l.CostUSD != nil {
		cost = strconv.FormatFloat(*l.CostUSD, 'f', -1, 64)
	}
	meta := ""
	if len(e.Metadata) > 0 && string(e.Metadata) != "null" {
		meta = string(e.Metadata)
	}
	r := w.row[:0]
	r = append(r,
		text(e.ID), timeCell(e.Time), text(string(e.ActorType)), text(e.ActorID), text(e.ActorName),
		text(e.Source), text(e.Action), text(e.ResourceType), text(e.ResourceID), text(string(e.Result)),
		intCell(int64(e.StatusCode)), floatCell(e.DurationMS), text(e.Description), text(e.Org),
		text(e.Project), text(e.ProducerID), intCell(e.ProducerSeq), intCell(e.Seq), timeCell(e.ReceivedAt),
		e.TraceID, e.SpanID, e.ParentSpanID, text(e.SessionID), text(l.Model), intCell(l.InputTokens), intCell(l.OutputTokens), intCell(l.CacheReadTokens),
		intCell(l.CacheWriteTokens), intCell(l.ReasoningTokens), cost, text(meta),
	)
	return w.cw.Write(r)
}

// writeHeader writes the header row once, before the first event or at
// Close, so an empty export is still a valid CSV file with its columns.
func (w *csvWriter) writeHeader() error {
	if w.header {
		return nil
	}
	w.header = true
	return w.cw.Write(CSVHeader())
}

func (w *csvWriter) Flush() error {
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		return err
	}
	return w.bw.Flush()
}

func (w *csvWriter) Close() error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	return w.Flush()
}

// text neutralizes a text cell against CSV injection (see csvWriter).
func text(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\'':
		return "'" + s
	}
	return s
}

// UnneutralizeCell returns the exact value of a text cell of the csv
// format: it removes the single quote the writer put in front of a value
// that starts with a formula character or a quote.
func UnneutralizeCell(s string) string {
	if len(s) > 1 && s[0] == '\'' {
		switch s[1] {
		case '=', '+', '-', '@', '\t', '\r', '\'':
			return s[1:]
		}
	}
	return s
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func intCell(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

func floatCell(f float64) string {
	if f == 0 {
		return ""
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
