package client

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/agenttrail/agenttrail"
)

// batchEncoder builds the JSON array body of POST /v1/events one event at a
// time, so that one unencodable event (metadata that is not JSON) is refused
// alone and the byte size of a batch is known while it grows. The zero value
// is ready to use; it is not safe for concurrent use.
type batchEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
	n   int
}

// add appends e. On error the batch is left as it was.
func (b *batchEncoder) add(e *agenttrail.Event) error {
	if b.enc == nil {
		b.enc = json.NewEncoder(&b.buf)
		b.enc.SetEscapeHTML(false)
	}
	mark := b.buf.Len()
	if b.n == 0 {
		b.buf.WriteByte('[')
	} else {
		b.buf.WriteByte(',')
	}
	if err := b.enc.Encode(e); err != nil {
		b.buf.Truncate(mark)
		return err
	}
	b.n++
	return nil
}

// size is the encoded size so far.
func (b *batchEncoder) size() int { return b.buf.Len() + 1 }

// finish returns the array. It is valid until the next reset.
func (b *batchEncoder) finish() []byte {
	if b.n == 0 {
		return []byte("[]")
	}
	b.buf.WriteByte(']')
	return b.buf.Bytes()
}

func (b *batchEncoder) reset() {
	b.buf.Reset()
	b.n = 0
}

// encodeBatch encodes events as a JSON array, naming the first event that
// cannot be encoded.
func encodeBatch(b *batchEncoder, events []agenttrail.Event) ([]byte, error) {
	if b == nil {
		b = &batchEncoder{}
	}
	for i := range events {
		if err := b.add(&events[i]); err != nil {
			return nil, agenttrail.Invalid("events["+strconv.Itoa(i)+"]", "cannot encode: %v", err)
		}
	}
	return b.finish(), nil
}
