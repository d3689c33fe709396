package egress

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agenttrail/agenttrail/capture/capturetest"
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
			capturetest.Latency(b, func() error { return get(direct, bc.srv.URL) }, func() error { return get(proxied, bc.srv.URL) })
			direct.CloseIdleConnections()
			proxied.CloseIdleConnections()
		})
	}
	if rec.Len() == 0 {
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

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
