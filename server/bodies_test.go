package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// holdBodies opens n connections that each POST /v1/events with the named
// token, declare a Content-Length of 16 MiB and send one byte, then keep
// the connection open: the attack of a client with a valid ingest token
// that lies about its body's length. The connections close when the test
// ends.
func holdBodies(t *testing.T, se *secEnv, token string, n int) []net.Conn {
	t.Helper()
	host := strings.TrimPrefix(se.url, "http://")
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[",
			host, se.tokens[token], 16<<20)
		conns = append(conns, c)
	}
	return conns
}

// waitHeld waits until the server's body budget holds want bytes.
func waitHeld(t *testing.T, se *secEnv, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for se.srv.bodies.Held() != want {
		if time.Now().After(deadline) {
			t.Fatalf("bodies in flight hold %d bytes, want %d", se.srv.bodies.Held(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestDeclaredLengthCostsNoMemory: 40 connections declaring 16 MiB and
// sending one byte once made the server allocate 640 MiB. Memory must
// follow the bytes received.
func TestDeclaredLengthCostsNoMemory(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	before := heapAlloc()
	const n = 40
	holdBodies(t, se, "acme-ingest", n)
	// Each connection has read its one byte and reserved the chunk it is
	// waiting to fill.
	waitHeld(t, se, n*2*bodyChunk)
	after := heapAlloc()
	grown := int64(after) - int64(before)
	t.Logf("%d connections declaring 16 MiB: heap grew %d KiB, bodies hold %d KiB", n, grown>>10, se.srv.bodies.Held()>>10)
	if grown > 32<<20 {
		t.Errorf("the heap grew by %d MiB while %d connections each sent 1 byte of a declared 16 MiB body", grown>>20, n)
	}
	if got := counterValue(t, se.reg, "agenttrail_ingest_body_bytes_held"); got != n*2*bodyChunk {
		t.Errorf("agenttrail_ingest_body_bytes_held = %v, want %d", got, n*2*bodyChunk)
	}
}

// TestBodiesInFlightAreBoundedServerWide: once the bodies being read hold
// the server-wide maximum, a further ingest request is a 503 with
// Retry-After, not more memory; when the held connections go away, ingest
// works again.
func TestBodiesInFlightAreBoundedServerWide(t *testing.T) {
	const max = 16 * 2 * bodyChunk
	se := newSecEnv(t, secOptions{maxBody: max})
	conns := holdBodies(t, se, "acme-ingest", 16)
	waitHeld(t, se, max)

	r := se.do(t, http.MethodPost, "/v1/events", se.as("acme-ingest"), []byte(validEvent("")))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("POST /v1/events while the bodies in flight hold the maximum = %d (Retry-After %q), want 503 with Retry-After: %s",
			r.status, r.header.Get("Retry-After"), r.body)
	}
	if got := counterValue(t, se.reg, "agenttrail_ingest_body_refused_total"); got < 1 {
		t.Errorf("agenttrail_ingest_body_refused_total = %v, want at least 1", got)
	}
	// More attackers are refused too, without reserving anything.
	extra := holdBodies(t, se, "globex-ingest", 4)
	for _, c := range extra {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("reading the answer to a body over the budget: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("a further held body = %d, want 503", resp.StatusCode)
		}
	}
	if held := se.srv.bodies.Held(); held > max {
		t.Fatalf("bodies hold %d bytes, over the maximum of %d", held, max)
	}

	for _, c := range conns {
		c.Close()
	}
	waitHeld(t, se, 0)
	if r := se.do(t, http.MethodPost, "/v1/events", se.as("acme-ingest"), []byte(validEvent(""))); r.status != http.StatusOK {
		t.Fatalf("POST /v1/events after the held bodies went away = %d, want 200: %s", r.status, r.body)
	}
}

// counterValue returns the value of the unlabelled counter or gauge name
// on reg.
func counterValue(t *testing.T, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}
