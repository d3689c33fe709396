package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// streamingClient returns an http.Client like c's without its overall
// Timeout: an export or a stream lasts as long as it has data, and ctx is
// what ends it.
func (c *Client) streamingClient() *http.Client {
	return &http.Client{Transport: c.hc.Transport, CheckRedirect: c.hc.CheckRedirect, Jar: c.hc.Jar}
}

// open sends GET path?f&extra with the given headers and returns the 2xx
// answer; other answers become a *StatusError.
func (c *Client) open(ctx context.Context, path string, f agenttrail.Filter, extra map[string]string, header http.Header) (*http.Response, error) {
	v := wire.EncodeFilter(f)
	for k, s := range extra {
		v.Set(k, s)
	}
	u := c.base() + path
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, vals := range header {
		req.Header[k] = vals
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.streamingClient().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// Export copies every event f matches, in format ("ndjson", "csv", "ocsf"
// or "cef"; "" means ndjson), from GET /v1/export to w, and returns once
// the server has sent the last one. The server cuts the connection when it
// fails midway, so an export that returns nil is complete; one that was cut
// returns an error (and w holds a truncated export). The Client's timeout
// does not apply: ctx bounds the export.
func (c *Client) Export(ctx context.Context, f agenttrail.Filter, format string, w io.Writer) error {
	var extra map[string]string
	if format != "" {
		extra = map[string]string{"format": format}
	}
	resp, err := c.open(ctx, "/v1/export", f, extra, http.Header{"Accept": {"*/*"}})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export: cut short: %w", err)
	}
	return nil
}

// Stream follows GET /v1/stream: it calls fn, in commit order, with every
// event f matches that is committed after lastSeq (when lastSeq > 0) or
// after the stream starts (lastSeq 0; with f.Since set, from the oldest
// match). fn runs on the caller's goroutine; an error from it ends Stream
// with that error.
//
// When an established stream is cut (the server restarts, the network
// drops, the server answers 5xx or 429), Stream reconnects after the delay
// the server asked for (or 2 s, backing off to 30 s) and resumes after the
// last event fn saw, so none is missed or repeated. A failure to connect
// the first time, and any 4xx, are returned at once. Stream returns
// ctx.Err() when ctx ends. The Client's timeout does not apply.
func (c *Client) Stream(ctx context.Context, f agenttrail.Filter, lastSeq int64, fn func(agenttrail.Event) error) error {
	retry := 2 * time.Second
	for attempt := 0; ; attempt++ {
		connected, err := c.streamOnce(ctx, f, &lastSeq, &retry, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fnErr *callbackError
		if errors.As(err, &fnErr) {
			return fnErr.err
		}
		if !connected && attempt == 0 || err != nil && !IsRetryable(err) {
			return fmt.Errorf("stream: %w", err)
		}
		if connected {
			attempt = 0
		}
		wait := min(retry<<min(attempt, 4), 30*time.Second)
		if d := RetryAfter(err); d > wait {
			wait = d
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// callbackError carries an error of Stream's fn through streamOnce.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// maxSSELine bounds one line of the event stream: an event is at most
// 1 MiB encoded by default, so this leaves room for configured limits.
const maxSSELine = 16 << 20

// streamOnce reads one connection of the stream until it ends. connected
// reports whether the server answered 200.
func (c *Client) streamOnce(ctx context.Context, f agenttrail.Filter, lastSeq *int64, retry *time.Duration, fn func(agenttrail.Event) error) (connected bool, err error) {
	h := http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	if *lastSeq > 0 {
		h.Set("Last-Event-ID", strconv.FormatInt(*lastSeq, 10))
	}
	resp, err := c.open(ctx, "/v1/stream", f, nil, h)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var (
		id, event string
		data      bytes.Buffer
	)
	for {
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // a stream never ends by itself
			}
			return true, err
		}
		if len(line) == 0 { // dispatch
			if data.Len() > 0 && (event == "" || event == "event") {
				var e agenttrail.Event
				if err := json.Unmarshal(data.Bytes(), &e); err != nil {
					return true, &decodeError{err: err}
				}
				if err := fn(e); err != nil {
					return true, &callbackError{err: err}
				}
				if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > *lastSeq {
					*lastSeq = n
				} else if e.Seq > *lastSeq {
					*lastSeq = e.Seq
				}
			}
			id, event = "", ""
			data.Reset()
			continue
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(name) {
		case "": // a comment: a heartbeat
		case "id":
			id = string(value)
		case "event":
			event = string(value)
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(value)
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && ms > 0 {
				*retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// readLine returns one line without its LF or CR LF ending.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxSSELine {
			return nil, errors.New("event stream line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		return line, nil
	}
}
