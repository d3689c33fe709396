package sandbox

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
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

	id, err := apiCall(direct, "POST", "/v1.47/containers/create?name=bench", `{"Image":"alpine","Cmd":["sleep","1d"]}`, 201)
	if err != nil {
		b.Fatal(err)
	}
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
			call := func(c *http.Client) func() error {
				return func() error {
					_, err := apiCall(c, bc.method, bc.path, bc.body, bc.status)
					return err
				}
			}
			capturetest.Latency(b, call(direct), call(proxied))
		})
	}
	if rec.n.Load() == 0 {
		b.Fatal("no events recorded")
	}
}

// apiCall makes one API call and returns the response body.
func apiCall(c *http.Client, method, path, body string, status int) (string, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://docker"+path, r)
	if err != nil {
		return "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		return "", fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, out)
	}
	return string(out), nil
}
