package sandbox

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// countRecorder counts events and keeps none, so a long benchmark does not
// measure a growing slice.
type countRecorder struct{ n atomic.Int64 }

func (c *countRecorder) Record(context.Context, agenttrail.Event) { c.n.Add(1) }

// BenchmarkAddedLatency measures the latency the Docker proxy adds to one
// Engine API call over unix sockets with kept-alive connections, direct and
// proxied in the same run, and reports p50 and p99 of each and of the
// difference. Ping is relayed without recording; Start and Create are
// recorded (Create also reads the request and response bodies).
func BenchmarkAddedLatency(b *testing.B) {
	eng := startEngine(b, "unix")
	rec := &countRecorder{}
	host, _, _ := startDockerProxy(b, "unix", DockerConfig{Upstream: eng.endpoint(), Recorder: rec})
	direct := unixHTTPClient(b, eng.sock)
	proxied := unixHTTPClient(b, strings.TrimPrefix(host, "unix://"))

	id := apiCall(b, direct, "POST", "/v1.47/containers/create?name=bench", `{"Image":"alpine","Cmd":["sleep","1d"]}`, 201)
	id = id[strings.Index(id, `"Id":"`)+6:][:64]
	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"Ping", "GET", "/_ping", "", 200},
		{"Start", "POST", "/v1.47/containers/" + id + "/start", "", 204},
		{"Create", "POST", "/v1.47/containers/create", `{"Image":"alpine:3.20","Cmd":["sh","-c","echo hi"],"HostConfig":{"Privileged":false}}`, 201},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			apiCall(b, direct, bc.method, bc.path, bc.body, bc.status) // warm the connections
			apiCall(b, proxied, bc.method, bc.path, bc.body, bc.status)
			var d, p []time.Duration
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				apiCall(b, direct, bc.method, bc.path, bc.body, bc.status)
				t1 := time.Now()
				apiCall(b, proxied, bc.method, bc.path, bc.body, bc.status)
				d, p = append(d, t1.Sub(t0)), append(p, time.Since(t1))
			}
			b.StopTimer()
			report(b, d, p)
		})
	}
	if rec.n.Load() == 0 {
		b.Fatal("no events recorded")
	}
}

// apiCall makes one API call and returns the response body.
func apiCall(b *testing.B, c *http.Client, method, path, body string, status int) string {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://docker"+path, r)
	if err != nil {
		b.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		b.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, out)
	}
	return string(out)
}

// report adds p50 and p99 of direct, proxied and added latency in
// microseconds.
func report(b *testing.B, direct, proxied []time.Duration) {
	q := func(s []time.Duration, p float64) float64 {
		s = slices.Clone(s)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))].Nanoseconds()) / 1e3
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p99", 0.99}} {
		dq, pq := q(direct, p.q), q(proxied, p.q)
		b.ReportMetric(dq, p.name+"-direct-µs")
		b.ReportMetric(pq, p.name+"-proxied-µs")
		b.ReportMetric(pq-dq, p.name+"-added-µs")
	}
	b.ReportMetric(0, "ns/op")
}
