package server

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// getOpening GETs path like get, but reads the body of a 200
// text/event-stream answer only up to its first message, so a stream that
// opened does not hold the caller forever.
func (e *env) getOpening(t testing.TB, path string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return response{status: resp.StatusCode, header: resp.Header}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// sseMessage is one Server-Sent Events message.
type sseMessage struct {
	id, event, data string
}

// sseStream is an open GET /v1/stream.
type sseStream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
	msgs   chan sseMessage
	errs   chan error
}

// openStream opens GET path (a /v1/stream URL) with the given headers and
// wants a 200 event stream. Messages arrive on s.msgs; comments are
// skipped. It is closed when the test ends.
func (e *env) openStream(t testing.TB, path string, header http.Header) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	// Not e.client: its timeout would end the stream.
	resp, err := (&http.Client{Transport: e.client.Transport}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s = %d %s: %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel, msgs: make(chan sseMessage, 4096), errs: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.errs <- s.read()
	}()
	t.Cleanup(func() {
		s.close()
		<-done
	})
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

func (s *sseStream) read() error {
	var m sseMessage
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m.data != "" || m.id != "" {
				s.msgs <- m
			}
			m = sseMessage{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		}
	}
}

// next returns the next message, failing the test after d.
func (s *sseStream) next(t testing.TB, d time.Duration) sseMessage {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case err := <-s.errs:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(d):
		t.Fatalf("no stream message within %v", d)
	}
	return sseMessage{}
}

// quiet wants no message for d.
func (s *sseStream) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.msgs:
		t.Fatalf("unexpected stream message id %s: %s", m.id, m.data)
	case <-time.After(d):
	}
}

func seqOf(t testing.TB, m sseMessage) int64 {
	t.Helper()
	n, err := strconv.ParseInt(m.id, 10, 64)
	if err != nil {
		t.Fatalf("message id %q is not a seq", m.id)
	}
	return n
}
