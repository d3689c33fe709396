package sink

import (
	"bytes"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/export"
	"github.com/agenttrail/agenttrail/storetest"
)

// TestEncoderBatch: a batch's payloads are, one by one, what package
// export writes for each event (the CSV header only in none of them), one
// line each, Body is them one after the other, and max_bytes cuts the batch
// at an event (never below one).
func TestEncoderBatch(t *testing.T) {
	events := storetest.Events(41, 50, storetest.Base(), time.Hour)
	for i := range events {
		events[i].Seq = int64(i + 1)
	}
	for _, format := range []string{FormatNative, export.OCSF, export.CEF, export.CSV} {
		t.Run(format, func(t *testing.T) {
			enc, err := newEncoder(format)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			name := format
			if format == FormatNative {
				name = export.NDJSON
			}
			w, _ := export.NewWriter(name, &want)
			for i := range events {
				w.Write(&events[i])
			}
			w.Close()
			lines := bytes.SplitAfter(want.Bytes(), []byte("\n"))
			if format == export.CSV {
				lines = lines[1:]
			}
			for round := range 2 { // the encoder is used again: no second header
				b, err := enc.batch("s", events, 1<<30)
				if err != nil {
					t.Fatal(err)
				}
				if len(b.Payloads) != len(events) {
					t.Fatalf("round %d: %d payloads, want %d", round, len(b.Payloads), len(events))
				}
				for i, p := range b.Payloads {
					if !bytes.Equal(p, lines[i]) {
						t.Fatalf("round %d: payload %d = %q, want %q", round, i, p, lines[i])
					}
				}
				if !bytes.Equal(b.Body(), bytes.Join(b.Payloads, nil)) {
					t.Fatalf("Body is not the payloads joined")
				}
			}
			limit := len(lines[0]) + len(lines[1]) + len(lines[2]) + 1
			b, _ := enc.batch("s", events, limit)
			if len(b.Events) != 3 || len(b.Payloads) != 3 || b.Events[2].Seq != 3 || !bytes.Equal(b.Payloads[2], lines[2]) || len(b.Body()) != limit-1 {
				t.Errorf("batch cut at %d bytes: %d events", limit, len(b.Events))
			}
			if b, _ := enc.batch("s", events, 1); len(b.Events) != 1 || !bytes.Equal(b.Payloads[0], lines[0]) {
				t.Errorf("batch under one event's size: %d events, want 1", len(b.Events))
			}
			sub := b.subset([]int{0})
			if !bytes.Equal(sub.Body(), lines[0]) {
				t.Errorf("subset Body = %q", sub.Body())
			}
		})
	}
}
