package sink

import (
	"bytes"
	"encoding/json"
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

// TestAppendEventJSON: the native payload is byte for byte what
// encoding/json writes, for awkward strings, numbers and times too.
func TestAppendEventJSON(t *testing.T) {
	idx := int64(7)
	events := storetest.Events(42, 200, storetest.Base(), time.Hour)
	odd := []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f\x7f\b\f\n\r\t", "bad utf8 \xff\xfe end", "line sep \u2028 para \u2029", "<html> & 'x'", "日本語 ✓ 😀"}
	for i := range events {
		e := &events[i]
		s := odd[i%len(odd)]
		e.Description, e.ActorName, e.ResourceID = s, odd[(i+1)%len(odd)], odd[(i+3)%len(odd)]
		e.DurationMS = []float64{0, 1, 0.5, 1e-7, 123456789.125, 1e21, 3e-10, -2.5}[i%8]
		e.StatusCode, e.ProducerSeq = i%3*200, int64(i%2)
		if i%4 == 0 {
			e.ReceivedAt = time.Time{}
			e.LogIndex = &idx
		}
		if i%5 == 0 {
			e.Metadata = []byte(` { "a" : [1, 2 ,{"b":"<c>"}] , "u":"\u2028"} `)
		}
		e.Time = e.Time.In(time.FixedZone("x", 3600+1800))
	}
	for i := range events {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&events[i]); err != nil {
			t.Fatal(err)
		}
		got, ok := appendEventJSON(nil, &events[i])
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
	}
	bad := events[1]
	bad.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := appendEventJSON(nil, &bad); ok {
		t.Error("a time past year 9999 was encoded")
	}
}
