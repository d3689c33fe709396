package shell

import (
	"io"
	"sync"
)

// DefaultMaxOutput is how much of each of stdout and stderr is recorded
// when Options.MaxOutput is zero.
const DefaultMaxOutput = 64 << 10

// capBuffer keeps the first max bytes written to it and counts the rest.
// Its Write never fails, so teeing into it never stops the output the
// user sees.
type capBuffer struct {
	mu    sync.Mutex
	buf   []byte
	max   int
	total int64
}

func newCapBuffer(max int) *capBuffer { return &capBuffer{max: max} }

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(len(p))
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// result returns what was kept, the total written and whether it was cut.
func (b *capBuffer) result() ([]byte, int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf, b.total, b.total > int64(len(b.buf))
}

// tee returns a writer that feeds b and then w. b goes first because it
// cannot fail: when w does (the reader of a pipe went away), the copy stops
// as it would without capture, and what came before is kept.
func tee(w io.Writer, b *capBuffer) io.Writer {
	if w == nil {
		return b
	}
	return io.MultiWriter(b, w)
}
