package sink

import (
	"bytes"
	"encoding/csv"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/export"
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

// encode appends the payload of ev to out: one line, ending in '\n'.
func (e *encoder) encode(ev *agenttrail.Event) ([]byte, error) {
	if err := e.w.Write(ev); err != nil {
		return nil, err
	}
	if err := e.w.Flush(); err != nil {
		return nil, err
	}
	b := e.buf.Bytes()
	if e.header > 0 {
		b = b[e.header:] // the header came with the first row only
		e.header = 0
	}
	out := bytes.Clone(b)
	e.buf.Reset()
	return out, nil
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
