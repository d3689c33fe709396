package egress

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// BenchmarkAddedLatency measures the latency the proxy adds to one request,
// proxied and direct in the same run, and reports p50 and p99 of each and
// of the difference. Plain is plain HTTP over kept-alive connections;
// Tunnel is HTTPS over a kept-alive CONNECT tunnel (the per-request cost of
// the splice); TunnelNew opens a new tunnel and TLS session per request.
func BenchmarkAddedLatency(b *testing.B) {
	body := make([]byte, 4<<10)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	plain := httptest.NewServer(handler)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(handler)
	defer tlsSrv.Close()
	proxy, rec := startProxy(b, Config{Policy: Policy{AllowPrivate: true}})

	cases := []struct {
		name      string
		srv       *httptest.Server
		keepAlive bool
	}{
		{"Plain", plain, true},
		{"Tunnel", tlsSrv, true},
		{"TunnelNew", tlsSrv, false},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			direct := benchClient(b, "", bc.srv, bc.keepAlive)
			proxied := benchClient(b, proxy, bc.srv, bc.keepAlive)
			get(b, direct, bc.srv.URL) // warm the connections
			get(b, proxied, bc.srv.URL)
			var d, p []time.Duration
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				get(b, direct, bc.srv.URL)
				t1 := time.Now()
				get(b, proxied, bc.srv.URL)
				d, p = append(d, t1.Sub(t0)), append(p, time.Since(t1))
			}
			b.StopTimer()
			report(b, d, p)
			direct.CloseIdleConnections()
			proxied.CloseIdleConnections()
		})
	}
	if rec.len() == 0 {
		b.Fatal("no events recorded")
	}
}

func benchClient(b *testing.B, proxy string, srv *httptest.Server, keepAlive bool) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 4}
	if srv.TLS != nil {
		tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	}
	if proxy != "" {
		c := proxiedClient(b, proxy, srv)
		c.Transport.(*http.Transport).DisableKeepAlives = !keepAlive
		return c
	}
	return &http.Client{Transport: tr}
}

func get(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
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
