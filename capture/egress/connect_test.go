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
	if m.Domain != "example.com" || m.Method != "CONNECT" || !m.Tunnel || !m.TLS || m.Port != up.Listener.Addr().(*net.TCPAddr).Port {
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
	if !m.Tunnel || m.TLS {
		t.Errorf("tunnel, tls = %v, %v; want a tunnel that carried no TLS", m.Tunnel, m.TLS)
	}
}

// TestConnectPlainHTTPIsNotTLS tunnels plain HTTP with curl --proxytunnel:
// the tunnel is recorded, TLS is not, because no ClientHello went through.
func TestConnectPlainHTTPIsNotTLS(t *testing.T) {
	up, _ := plainUpstream(t)
	proxy, rec := startProxy(t, Config{Policy: Policy{AllowPrivate: true}})
	target := "http://127.0.0.1:" + port(t, up) + "/status/200"
	if out, errOut, code := curl(t, "--proxytunnel", "-x", proxy, target); code != 0 {
		t.Fatalf("curl --proxytunnel = %q, exit %d (%s)", out, code, errOut)
	}
	e := rec.Wait(t, 1)[0]
	m := httpMeta(t, e)
	if m.Method != "CONNECT" || !m.Tunnel || m.TLS || m.BytesOut == 0 {
		t.Errorf("metadata.http = %+v; want a CONNECT tunnel, tls false", m)
	}
	if !strings.HasPrefix(e.Description, "tunnel to 127.0.0.1:") {
		t.Errorf("description = %q, want a plain tunnel", e.Description)
	}
}

// oneByteReader returns one byte per Read, as a slow client sends.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}

func TestSniffHello(t *testing.T) {
	hello := []byte{22, 3, 1, 2, 0, 1, 0, 1, 252, 3, 3}
	tests := []struct {
		name         string
		early, rest  []byte
		want         bool
		wantN, wantR int // bytes copied; bytes left unread in rest
	}{
		{"hello in early bytes", hello, nil, true, len(hello), 0},
		{"hello one byte a read", nil, hello, true, 6, len(hello) - 6},
		{"hello split", hello[:2], hello[2:], true, 6, len(hello) - 6},
		{"plain HTTP", nil, []byte("GET / HTTP/1.1\r\n"), false, 1, len("GET / HTTP/1.1\r\n") - 1},
		{"handshake but not a ClientHello", nil, []byte{22, 3, 3, 0, 40, 2, 0}, false, 6, 1},
		{"closed after 3 bytes", nil, []byte{22, 3, 1}, false, 3, 0},
	}
	for _, tt := range tests {
		var dst bytes.Buffer
		src := &oneByteReader{b: tt.rest}
		got, n, err := sniffHello(&dst, src, tt.early)
		if err != nil && err != io.EOF {
			t.Fatalf("%s: error %v", tt.name, err)
		}
		if got != tt.want || n != int64(tt.wantN) || dst.Len() != tt.wantN || len(src.b) != tt.wantR {
			t.Errorf("%s: sniffHello = %v, copied %d (%d written), %d left; want %v, %d, %d left",
				tt.name, got, n, dst.Len(), len(src.b), tt.want, tt.wantN, tt.wantR)
		}
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
