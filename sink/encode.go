package sink

import (
	"bytes"
	"encoding/csv"
	"fmt"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/export"
	"github.com/agenttrail/agenttrail/internal/eventjson"
)

// encoder turns events into payloads of one format through package
// export's writers, so every field an event carries reaches the receiver
// exactly as GET /v1/export writes it.
type encoder struct {
	format string
	buf    bytes.Buffer
	w      export.Writer
	header int // bytes of the CSV header the writer puts before its first row
}

func newEncoder(format string) (*encoder, error) {
	if format == FormatNative {
		format = export.NDJSON
	}
	e := &encoder{format: format}
	w, err := export.NewWriter(format, &e.buf)
	if err != nil {
		return nil, err
	}
	e.w = w
	if format == export.CSV {
		e.header = len(CSVHeaderLine())
	}
	return e, nil
}

// batch encodes events into the batch of sink, up to maxBytes (at least
// one event, whatever its size). The payloads are slices of one buffer the
// batch owns (Batch.Body), so a batch costs one copy, not one per event.
func (e *encoder) batch(sink string, events []agenttrail.Event, maxBytes int) (*Batch, error) {
	e.buf.Reset()
	ends := make([]int, 0, len(events))
	for i := range events {
		before := e.buf.Len()
		if err := e.encode(&events[i]); err != nil {
			return nil, fmt.Errorf("encode seq %d: %w", events[i].Seq, err)
		}
		if i > 0 && e.buf.Len() > maxBytes {
			e.buf.Truncate(before)
			break
		}
		ends = append(ends, e.buf.Len())
	}
	b := &Batch{Sink: sink, Events: events[:len(ends):len(ends)], Payloads: make([][]byte, len(ends)), body: bytes.Clone(e.buf.Bytes())}
	start := 0
	for i, end := range ends {
		b.Payloads[i] = b.body[start:end:end]
		start = end
	}
	e.buf.Reset()
	return b, nil
}

// encode appends the payload of ev to e.buf: one line, ending in '\n'.
func (e *encoder) encode(ev *agenttrail.Event) error {
	if e.format == export.NDJSON {
		if p, ok := eventjson.Append(e.buf.AvailableBuffer(), ev); ok {
			e.buf.Write(p)
			return nil
		}
	}
	before := e.buf.Len()
	if err := e.w.Write(ev); err != nil {
		return err
	}
	if err := e.w.Flush(); err != nil {
		return err
	}
	if e.header > 0 {
		// The header came with the first row only.
		e.buf.Truncate(before + copy(e.buf.Bytes()[before:], e.buf.Bytes()[before+e.header:]))
		e.header = 0
	}
	return nil
}

// CSVHeaderLine is the header row of the csv format, as the csv writer
// writes it.
func CSVHeaderLine() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(export.CSVHeader())
	w.Flush()
	return b.Bytes()
}
