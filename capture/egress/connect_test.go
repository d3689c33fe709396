package egress

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// TestConnectCurl sends HTTPS through the proxy with the curl binary, which
// verifies the upstream's certificate through the tunnel.
func TestConnectCurl(t *testing.T) {
	up, ca := tlsUpstream(t)
	res := newFakeResolver(map[string]string{"example.com": "127.0.0.1"})
	proxy, rec := startProxy(t, Config{
		Resolver:   res,
		Identities: identities(),
		Policy:     Policy{Allow: []string{"example.com"}}, // explicit: may reach loopback
	})

	target := "https://example.com:" + port(t, up) + "/hello"
	out, errOut, code := curl(t, "-x", proxy, "--proxy-user", "ci:sk-proxy-1", "--cacert", ca, "--data", "ping", target)
	if code != 0 || out != "hello from upstreamping" {
		t.Fatalf("curl = %q, exit %d (%s), want the upstream's answer", out, code, errOut)
	}
	e := rec.Wait(t, 1)[0]
	m := httpMeta(t, e)
	if want := "CONNECT example.com:" + port(t, up); e.Action != want {
		t.Errorf("action = %q, want %q", e.Action, want)
	}
	if e.Source != agenttrail.SourceEgress || e.ResourceType != "domain" || e.ResourceID != "example.com" {
		t.Errorf("source, resource = %q, %q, %q", e.Source, e.ResourceType, e.ResourceID)
	}
	if e.Result != agenttrail.ResultSuccess || e.StatusCode != http.StatusOK {
		t.Errorf("result, status = %s, %d; want success, 200", e.Result, e.StatusCode)
	}
	if e.ActorID != "agent-ci" || e.ActorName != "CI agent" {
		t.Errorf("actor = %q (%q), want agent-ci from the proxy credential", e.ActorID, e.ActorName)
	}
	if m.Domain != "example.com" || m.Method != "CONNECT" || !m.TLS || m.Port != up.Listener.Addr().(*net.TCPAddr).Port {
		t.Errorf("metadata.http = %+v", m)
	}
	// A TLS handshake alone is well over 500 bytes each way.
	if m.BytesOut < 500 || m.BytesIn < 500 {
		t.Errorf("bytes out, in = %d, %d; want the handshake and the request counted", m.BytesOut, m.BytesIn)
	}
	if m.Address != up.Listener.Addr().String() {
		t.Errorf("address = %q, want %q", m.Address, up.Listener.Addr())
	}
	if e.DurationMS <= 0 {
		t.Errorf("duration_ms = %v, want > 0", e.DurationMS)
	}
	if n := res.count("example.com"); n != 1 {
		t.Errorf("example.com resolved %d times, want once", n)
	}
}

// TestConnectGoClient sends several requests over one kept-alive tunnel
// with net/http and checks the tunnel is one event, recorded when it
// closes, counting every byte.
func TestConnectGoClient(t *testing.T) {
	up, _ := tlsUpstream(t)
	proxy, rec, stop := startStoppableProxy(t, Config{
		Resolver: newFakeResolver(map[string]string{"example.com": "127.0.0.1"}),
		Policy:   Policy{AllowPrivate: true},
	})
	c := proxiedClient(t, proxy, up)
	upload := bytes.Repeat([]byte("u"), 100<<10)
	for i := 0; i < 3; i++ {
		resp, err := c.Post("https://example.com:"+port(t, up)+"/up", "application/octet-stream", bytes.NewReader(upload))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) != len("hello from upstream")+len(upload) {
			t.Fatalf("response %d bytes, want %d", len(b), len("hello from upstream")+len(upload))
		}
	}
	if n := rec.Len(); n != 0 {
		t.Fatalf("%d events while the tunnel is open, want none until it closes", n)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	ev := rec.Wait(t, 1)
	stop() // once it returns, nothing is left that could record another event
	if n := rec.Len(); n != 1 {
		t.Fatalf("%d events, want 1 for the one tunnel", n)
	}
	m := httpMeta(t, ev[0])
	want := int64(3 * len(upload))
	if m.BytesOut < want || m.BytesOut > want+32<<10 || m.BytesIn < want || m.BytesIn > want+32<<10 {
		t.Errorf("bytes out, in = %d, %d; want each a little over %d", m.BytesOut, m.BytesIn, want)
	}
}

// TestConnectExactBytes counts a raw tunnel byte for byte, including bytes
// the client sends before the proxy answers the CONNECT.
func TestConnectExactBytes(t *testing.T) {
	echo := echoServer(t)
	proxy, rec := startProxy(t, Config{Policy: Policy{AllowPrivate: true}})

	conn, err := net.Dial("tcp", strings.TrimPrefix(proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	early := "early bytes|"
	if _, err := io.WriteString(conn, "CONNECT "+echo+" HTTP/1.1\r\nHost: "+echo+"\r\n\r\n"+early); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT answer = %v, %v; want 200", resp, err)
	}
	body := strings.Repeat("0123456789", 5000)
	go io.WriteString(conn, body)
	got := make([]byte, len(early)+len(body))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if string(got) != early+body {
		t.Fatalf("echo differs from what was sent")
	}
	conn.(*net.TCPConn).CloseWrite()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after half-close: %v, want EOF", err)
	}
	m := httpMeta(t, rec.Wait(t, 1)[0])
	n := int64(len(early) + len(body))
	if m.BytesOut != n || m.BytesIn != n {
		t.Errorf("bytes out, in = %d, %d; want %d each", m.BytesOut, m.BytesIn, n)
	}
}

// echoServer returns the address of a TCP server that echoes and half-closes
// when its client does.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestConnectCloseEndsTunnels checks Close ends an open tunnel and records
// it.
func TestConnectCloseEndsTunnels(t *testing.T) {
	echo := echoServer(t)
	rec := &memRecorder{}
	p, err := New(Config{Recorder: rec, Policy: Policy{AllowPrivate: true}})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(t, p)
	conn, err := net.Dial("tcp", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "CONNECT "+echo+" HTTP/1.1\r\nHost: "+echo+"\r\n\r\n")
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT = %v, %v", resp, err)
	}
	p.Close()
	if n := rec.Len(); n != 1 {
		t.Fatalf("%d events after Close, want the tunnel recorded", n)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel still open after Close")
	}
}

// newHTTPServer serves h on a loopback listener with net/http and returns
// its address.
func newHTTPServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
