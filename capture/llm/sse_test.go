package llm

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSSEReader(t *testing.T) {
	long := strings.Repeat("x", 100)
	in := "event: message_start\ndata: {\"a\":1}\n\n" +
		": keep-alive\n\n" +
		"data: line1\r\ndata: line2\r\n\r\n" +
		"\n\ndata: " + long + "\n\n" +
		"data:nospace\n\n" +
		"data: [DONE]" // cut: no terminating newline
	type want struct{ name, data, raw string }
	wants := []want{
		{"message_start", `{"a":1}`, "event: message_start\ndata: {\"a\":1}\n\n"},
		{"", "", ": keep-alive\n\n"},
		{"", "line1\nline2", "data: line1\r\ndata: line2\r\n\r\n"},
		{"", long, "\n\ndata: " + long + "\n\n"},
		{"", "nospace", "data:nospace\n\n"},
		{"", "[DONE]", "data: [DONE]"},
	}
	// A tiny buffer forces long lines across several reads, and OneByteReader
	// delivers the stream a byte at a time.
	r := newSSEReader(iotest.OneByteReader(strings.NewReader(in)), 16)
	var raw strings.Builder
	for i, w := range wants {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Name != w.name || string(ev.Data) != w.data || string(ev.Raw) != w.raw {
			t.Errorf("event %d = %q %q %q, want %q %q %q", i, ev.Name, ev.Data, ev.Raw, w.name, w.data, w.raw)
		}
		raw.Write(ev.Raw)
	}
	if ev, err := r.Next(); ev != nil || !errors.Is(err, io.EOF) {
		t.Errorf("after the last event: %v, %v; want nil, EOF", ev, err)
	}
	if raw.String() != in {
		t.Errorf("concatenated Raw = %q, want the input unchanged", raw.String())
	}
}

// TestSSEReaderNoLookahead: an event is returned as soon as its blank line
// arrives, without waiting for the next one.
func TestSSEReaderNoLookahead(t *testing.T) {
	pr, pw := io.Pipe()
	r := newSSEReader(pr, 4096)
	go pw.Write([]byte("data: first\n\n"))
	ev, err := r.Next()
	if err != nil || string(ev.Data) != "first" {
		t.Fatalf("Next = %v, %v", ev, err)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Next after a cut = %v, want the read error", err)
	}
}
