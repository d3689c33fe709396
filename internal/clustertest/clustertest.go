// Package clustertest runs what the cluster's tests need: a NATS server
// with JetStream in the test's own process, a cluster of nats-server
// processes that a test may kill, the machine's NATS server when
// AGENTTRAIL_TEST_NATS names one, and a PostgreSQL schema of the test's
// own on AGENTTRAIL_TEST_POSTGRES.
package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATS is a NATS server with JetStream run in the test's process.
type NATS struct {
	t    testing.TB
	dir  string
	port int
	srv  *natsserver.Server
	opts func(*natsserver.Options) // the test's own settings
}

// StartNATS starts a NATS server with JetStream on a free loopback port,
// its store in a temporary directory; it is shut down when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, dir: t.TempDir(), port: -1}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// StartNATSWith is StartNATS with settings of the test's own (a smaller
// max_payload, say) applied to the server's options.
func StartNATSWith(t testing.TB, opts func(*natsserver.Options)) *NATS {
	t.Helper()
	n := &NATS{t: t, dir: t.TempDir(), port: -1, opts: opts}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// Start starts the server (again, on the same port and store after Stop).
func (n *NATS) Start() {
	n.t.Helper()
	if !n.start() {
		n.t.FailNow()
	}
}

// start starts the server, reporting failures with Errorf, so that it
// may run outside the test's goroutine.
func (n *NATS) start() bool {
	opts := &natsserver.Options{
		Host:      "127.0.0.1",
		Port:      n.port,
		JetStream: true,
		StoreDir:  n.dir,
		NoLog:     true,
		NoSigs:    true,
	}
	if n.opts != nil {
		n.opts(opts)
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		n.t.Errorf("nats server: %v", err)
		return false
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		n.t.Errorf("nats server not ready")
		srv.Shutdown()
		return false
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
	return true
}

// Stop shuts the server down; it is safe to call twice.
func (n *NATS) Stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// URL is the server's client URL.
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// MachineNATS returns the URL of the NATS server AGENTTRAIL_TEST_NATS
// names, after checking it answers with JetStream; the test fails when it
// does not, and is skipped when the variable is not set.
func MachineNATS(t testing.TB) string {
	t.Helper()
	u := os.Getenv("AGENTTRAIL_TEST_NATS")
	if u == "" {
		t.Skip("set AGENTTRAIL_TEST_NATS=nats://127.0.0.1:4222 to run against a NATS server with JetStream")
	}
	nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("AGENTTRAIL_TEST_NATS=%s is unreachable: %v", u, err)
	}
	defer nc.Close()
	if _, err := nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Fatalf("AGENTTRAIL_TEST_NATS=%s has no JetStream: %v", u, err)
	}
	return u
}

// Unique returns a name no other test run uses: for streams and subjects
// on a shared NATS server.
func Unique(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Postgres creates a schema of the test's own on AGENTTRAIL_TEST_POSTGRES,
// dropped when the test ends, and returns a DSN that uses it. The test is
// skipped when the variable is not set and fails when the server is
// unreachable.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("AGENTTRAIL_TEST_POSTGRES")
	if base == "" {
		t.Skip("PostgreSQL tests need a server: run with AGENTTRAIL_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test")
	}
	schema := Unique("agenttrail_cluster_")
	exec := func(sql string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("AGENTTRAIL_TEST_POSTGRES is unreachable: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	t.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("AGENTTRAIL_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// DeleteStreamAtEnd deletes the stream when the test ends, so runs on a
// shared NATS server leave nothing behind.
func DeleteStreamAtEnd(t testing.TB, url, stream string) {
	t.Cleanup(func() {
		nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
		if err != nil {
			t.Errorf("delete stream %s: %v", stream, err)
			return
		}
		defer nc.Close()
		if _, err := nc.Request("$JS.API.STREAM.DELETE."+stream, nil, 5*time.Second); err != nil {
			t.Errorf("delete stream %s: %v", stream, err)
		}
	})
}

// Proxy is a loopback TCP proxy in front of a server, which a test cuts to
// make the server unreachable for the clients that go through it (and only
// for them), without stopping a server others use.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	up    bool
	conns map[net.Conn]bool
}

// StartProxy starts a proxy to target (host:port) on a free loopback
// port; it is closed when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, ln: ln, target: target, up: true, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy and refuses new ones
// until Restore: to its clients the server is down.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = false
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.up = true
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	if !up {
		c.Close()
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(c, s)
	go pipe(s, c)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// Through returns dsn (a postgres:// URL) with its host and port replaced
// by the proxy's.
func (p *Proxy) Through(dsn string) string {
	p.t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		p.t.Fatal(err)
	}
	u.Host = p.Addr()
	return u.String()
}

// PostgresAddr returns the host:port of a postgres:// URL.
func PostgresAddr(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitFor polls ok until it holds, failing the test after d.
func WaitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
