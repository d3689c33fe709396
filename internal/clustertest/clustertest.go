// Package clustertest runs what the cluster's tests need: a NATS server
// with JetStream in the test's own process, the machine's NATS server when
// AGENTTRAIL_TEST_NATS names one, and a PostgreSQL schema of the test's
// own on AGENTTRAIL_TEST_POSTGRES.
package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strconv"
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

// Start starts the server (again, on the same port and store after Stop).
func (n *NATS) Start() {
	n.t.Helper()
	opts := &natsserver.Options{
		Host:      "127.0.0.1",
		Port:      n.port,
		JetStream: true,
		StoreDir:  n.dir,
		NoLog:     true,
		NoSigs:    true,
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		n.t.Fatalf("nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatalf("nats server not ready")
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
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
