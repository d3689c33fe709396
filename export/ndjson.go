package export

import (
	"bufio"
	"encoding/json"

	"github.com/agenttrail/agenttrail"
)

// ndjsonWriter writes the wire JSON of each event on its own line, exactly
// what GET /v1/events returns, so an export can be ingested again.
type ndjsonWriter struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

func newNDJSON(bw *bufio.Writer) *ndjsonWriter {
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &ndjsonWriter{bw: bw, enc: enc}
}

func (w *ndjsonWriter) Write(e *agenttrail.Event) error { return w.enc.Encode(e) }
func (w *ndjsonWriter) Flush() error                    { return w.bw.Flush() }
func (w *ndjsonWriter) Close() error                    { return w.bw.Flush() }
