package llm_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/llm"
)

// discard is a Recorder that drops events: the benchmarks measure the
// proxy, not the SDK's queue.
type discard struct{}

func (discard) Record(context.Context, agenttrail.Event) {}

// benchEnv is a proxy and its upstream, and a client for each.
type benchEnv struct {
	up, proxy string
	client    *http.Client
}

func newBenchEnv(b *testing.B) *benchEnv {
	up := newUpstream(b)
	u, _ := url.Parse(up.URL)
	p, err := llm.New(llm.Config{Upstream: u, Recorder: discard{}, Identities: testIdentities()})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(p)
	b.Cleanup(srv.Close)
	return &benchEnv{up: up.URL, proxy: srv.URL, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

// post sends body to base+path and returns the time to the whole response
// (stream false) or to the first content chunk (stream true).
func (e *benchEnv) post(base, body string, stream bool) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+ciKey)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if !stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	br := bufio.NewReader(resp.Body)
	var d time.Duration
	for d == 0 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("stream ended before a content chunk: %w", err)
		}
		if bytes.Contains(line, []byte(`"content":"Hello"`)) {
			d = time.Since(start)
		}
	}
	io.Copy(io.Discard, br)
	return d, nil
}

// benchAdded alternates direct and proxied calls in one run and reports
// the percentiles of both and the difference the proxy adds.
func benchAdded(b *testing.B, body string, stream bool) {
	e := newBenchEnv(b)
	capturetest.MeasuredLatency(b,
		func() (time.Duration, error) { return e.post(e.up, body, stream) },
		func() (time.Duration, error) { return e.post(e.proxy, body, stream) })
}

// BenchmarkLatency measures the latency the proxy adds to a non-streamed
// chat completion, proxied against direct in the same run.
func BenchmarkLatency(b *testing.B) {
	benchAdded(b, `{"model":"gpt-4o","messages":[{"role":"user","content":"Describe the image."}]}`, false)
}

// BenchmarkTimeToFirstToken measures the time to the first content chunk
// of a stream, proxied (which also asks for usage and strips it) against
// direct.
func BenchmarkTimeToFirstToken(b *testing.B) {
	benchAdded(b, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Describe the image."}]}`, true)
}
