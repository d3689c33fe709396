package llm

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// sseEvent is one server-sent event as it arrived: Raw holds its bytes up to
// and including the blank line that ends it, so it can be forwarded exactly;
// Name and Data are its parsed "event:" and "data:" fields.
type sseEvent struct {
	Raw  []byte
	Name string
	Data []byte
}

// sseReader splits a text/event-stream into events. It returns each event as
// soon as its terminating blank line has been read: it never waits for more
// input than one event needs, which is what keeps a proxied stream's
// time-to-first-token unchanged. The returned event's slices are reused by
// the next call. Not safe for concurrent use.
type sseReader struct {
	br  *bufio.Reader
	ev  sseEvent
	err error
}

func newSSEReader(r io.Reader, size int) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, size)}
}

// Next returns the next event, or nil and io.EOF at the end of the stream
// (or the read error that cut it). An event cut short by the end of the
// stream is returned before the error.
func (s *sseReader) Next() (*sseEvent, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.ev.Raw, s.ev.Data, s.ev.Name = s.ev.Raw[:0], s.ev.Data[:0], ""
	hasData, seen := false, false
	for {
		start := len(s.ev.Raw)
		var err error
		for {
			var chunk []byte
			chunk, err = s.br.ReadSlice('\n')
			s.ev.Raw = append(s.ev.Raw, chunk...)
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		line := bytes.TrimRight(s.ev.Raw[start:], "\r\n")
		if err != nil {
			s.err = err
			if len(s.ev.Raw) == 0 {
				return nil, err
			}
			if len(line) > 0 {
				s.field(line, &hasData)
			}
			return &s.ev, nil
		}
		if len(line) == 0 {
			if !seen {
				// Stray blank lines between events: keep them with the next event
				// so the bytes forwarded stay the bytes received.
				continue
			}
			return &s.ev, nil
		}
		seen = true
		s.field(line, &hasData)
	}
}

// field applies one "name: value" line of the event being read.
func (s *sseReader) field(line []byte, hasData *bool) {
	if line[0] == ':' {
		return // a comment, e.g. a keep-alive ": ping"
	}
	name, value, _ := bytes.Cut(line, []byte{':'})
	value = bytes.TrimPrefix(value, []byte{' '})
	switch string(name) {
	case "data":
		if *hasData {
			s.ev.Data = append(s.ev.Data, '\n')
		}
		s.ev.Data = append(s.ev.Data, value...)
		*hasData = true
	case "event":
		s.ev.Name = string(value)
	}
}
