package mcp

import (
	"bytes"
	"io"
)

// sseObserver passes a text/event-stream body through unchanged and hands
// the data of each complete event to onEvent as soon as the event has been
// read, before the proxy writes it on: a server-to-client request is then
// pending before the client can answer it. Events larger than limit are
// relayed but not observed; skipped counts them. It is used by one
// goroutine.
type sseObserver struct {
	rc      io.ReadCloser
	onEvent func(data []byte)
	limit   int
	skipped int

	line     []byte // the current line, carried across reads
	data     []byte // the data lines of the current event
	hasData  bool
	overflow bool // the current line or event is over limit
}

func newSSEObserver(rc io.ReadCloser, limit int, onEvent func([]byte)) *sseObserver {
	return &sseObserver{rc: rc, onEvent: onEvent, limit: limit}
}

// Read implements io.Reader.
func (s *sseObserver) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	s.scan(p[:n])
	return n, err
}

// Close implements io.Closer.
func (s *sseObserver) Close() error { return s.rc.Close() }

func (s *sseObserver) scan(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.appendLine(b)
			return
		}
		s.appendLine(b[:i])
		s.endLine(bytes.TrimSuffix(s.line, []byte("\r")))
		s.line = s.line[:0]
		b = b[i+1:]
	}
}

func (s *sseObserver) appendLine(b []byte) {
	if len(s.line)+len(b) > s.limit {
		s.overflow = true
		return
	}
	s.line = append(s.line, b...)
}

// endLine applies one line of the event-stream format: a blank line
// dispatches the event, "data:" lines accumulate, other fields and comments
// are not the observer's business.
func (s *sseObserver) endLine(l []byte) {
	if len(l) == 0 {
		switch {
		case s.overflow:
			s.skipped++
		case s.hasData:
			s.onEvent(s.data)
		}
		s.data, s.hasData, s.overflow = s.data[:0], false, false
		return
	}
	v, ok := bytes.CutPrefix(l, []byte("data"))
	if !ok || (len(v) > 0 && v[0] != ':') {
		return
	}
	v = bytes.TrimPrefix(bytes.TrimPrefix(v, []byte(":")), []byte(" "))
	if s.hasData {
		s.data = append(s.data, '\n')
	}
	s.data = append(s.data, v...)
	s.hasData = true
	if len(s.data) > s.limit {
		s.overflow = true
	}
}
