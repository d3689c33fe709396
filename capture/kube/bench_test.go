package kube

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agenttrail/agenttrail/capture/capturetest"
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
	direct := func() error { return get(c, up.URL+path, upstreamToken) }
	proxied := func() error { return get(c, proxy+path, agentToken) }
	capturetest.Latency(b, direct, proxied)
	if len(rec.Wait(b, 1)) == 0 {
		b.Fatal("no events recorded")
	}
}

func get(c *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
