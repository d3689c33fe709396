package kube

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// BenchmarkAddedLatency measures the latency the proxy adds to one get of a
// pod, proxied and direct in the same run over kept-alive connections, and
// reports p50 and p99 of each and of the difference.
func BenchmarkAddedLatency(b *testing.B) {
	up := httptest.NewServer(newFakeCluster())
	defer up.Close()
	proxy, rec := startProxy(b, up.URL, Config{})
	const path = "/api/v1/namespaces/default/pods/web"
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer c.CloseIdleConnections()
	direct := func() { get(b, c, up.URL+path, upstreamToken) }
	proxied := func() { get(b, c, proxy+path, agentToken) }
	direct() // warm the connections
	proxied()

	var d, p []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		direct()
		t1 := time.Now()
		proxied()
		d, p = append(d, t1.Sub(t0)), append(p, time.Since(t1))
	}
	b.StopTimer()
	report(b, d, p)
	if len(rec.wait(b, 1)) == 0 {
		b.Fatal("no events recorded")
	}
}

func get(b *testing.B, c *http.Client, url, token string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
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
