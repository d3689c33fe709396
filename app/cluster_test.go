package app

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/internal/clustertest"
)

// TestClusterRoles runs an ingest node, a writer and a query node on one
// NATS server and one PostgreSQL store: events posted to the ingest node
// are read back on the query node; the query node refuses ingest and the
// ingest node reads; /metrics tells the active writer and the lag.
func TestClusterRoles(t *testing.T) {
	dsn := clustertest.Postgres(t)
	nats := cluster.Config{URL: clustertest.StartNATS(t).URL(), Stream: clustertest.Unique("T")}
	// The first node started creates the admin token, in the store that
	// every node shares.
	var token string
	key := signingKeyFile(t)
	node := func(role string) *Main {
		dir := t.TempDir()
		m := runMain(t, Config{Addr: "127.0.0.1:0", DataDir: dir, Store: dsn, Role: role, NATS: nats, SigningKey: key})
		if token == "" {
			b, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
			if err != nil {
				t.Fatal(err)
			}
			token = strings.TrimSpace(string(b))
		}
		return m
	}
	in := node(RoleIngest)
	writer := node(RoleWriter)
	query := node(RoleQuery)
	inToken, queryToken := token, token
	if in.Store() != nil {
		t.Error("the ingest node opened a store")
	}

	do := func(method, url, token, body string) (int, string) { return httpDo(t, method, url, token, body) }
	const ev = `{"id":"c1","actor_type":"agent","actor_id":"a","source":"shell","action":"ls","result":"success"}`
	if code, body := do("POST", in.URL()+"/v1/events", inToken, ev); code != http.StatusOK || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("POST to the ingest node = %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := do("GET", query.URL()+"/v1/events/c1", queryToken, "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET c1 on the query node = %d %s after 30 s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := do("POST", query.URL()+"/v1/events", queryToken, ev); code != http.StatusServiceUnavailable || !strings.Contains(body, "does not ingest") {
		t.Errorf("POST to the query node = %d %s, want 503 saying it does not ingest", code, body)
	}
	if code, body := do("GET", in.URL()+"/v1/events", inToken, ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "serves no reads") {
		t.Errorf("GET /v1/events on the ingest node = %d %s, want 503 saying it serves no reads", code, body)
	}
	// /readyz tells each node's role, the stream and the writers' lag.
	for _, tc := range []struct {
		m     *Main
		wants []string
	}{
		{in, []string{`"role":"ingest"`, `"nats_connected":true`, `"stream":{"messages":`}},
		{writer, []string{`"role":"writer"`, `"writer_active":true`, `"consumer":{"pending":`, `"max_bytes":`}},
		{query, []string{`"role":"query"`, `"consumer":{"pending":`}},
	} {
		code, body := do("GET", tc.m.URL()+"/readyz", "", "")
		if code != http.StatusOK {
			t.Errorf("/readyz = %d %s", code, body)
		}
		for _, want := range tc.wants {
			if !strings.Contains(body, want) {
				t.Errorf("/readyz = %s, want %s in it", body, want)
			}
		}
	}
	// The writer's gauges are read from NATS at each scrape, and the
	// consumer's pending count settles once the writer has fetched: scrape
	// until they hold, as a monitor would.
	wants := []string{"\nagenttrail_writer_active 1\n", "\nagenttrail_nats_connected 1\n", "\nagenttrail_nats_consumer_pending 0\n", "\nagenttrail_nats_stream_max_bytes "}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, metrics := do("GET", writer.URL()+"/metrics", "", "")
		var missing []string
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics of the writer (%d) has no %q after 30 s", code, missing)
			break
		}
	}
}

// httpDo sends a request with token and returns the status and body.
func httpDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRoleChecks: a role of a cluster needs NATS, a writer needs
// PostgreSQL, and an unknown role is named.
func TestRoleChecks(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{DataDir: "d", Role: "ingest"}, "needs --nats"},
		{Config{DataDir: "d", Role: "leader"}, `not "leader"`},
		{Config{DataDir: "d", Role: "writer", NATS: cluster.Config{URL: "nats://127.0.0.1:1"}}, "PostgreSQL store"},
		{Config{DataDir: "d", NATS: cluster.Config{URL: "nats://127.0.0.1:1"}}, "PostgreSQL store"},
		{Config{DataDir: "d", Role: "ingest", NATS: cluster.Config{URL: "nats://127.0.0.1:1"}}, "PostgreSQL store"},
		{Config{DataDir: "d", Role: "ingest", NATS: cluster.Config{URL: "127.0.0.1:4222"}}, "not a URL"},
		// The key that signs the checkpoints is not kept in the store.
		{Config{DataDir: "d", Role: "writer", Store: "postgres://127.0.0.1:1/db", NATS: cluster.Config{URL: "nats://127.0.0.1:1"}}, "--signing-key FILE"},
		{Config{DataDir: "d", Role: "query", Store: "postgres://127.0.0.1:1/db", NATS: cluster.Config{URL: "nats://127.0.0.1:1"}}, "--signing-key FILE"},
		{Config{DataDir: "d", Store: "postgres://127.0.0.1:1/db", NATS: cluster.Config{URL: "nats://127.0.0.1:1"}}, "--signing-key FILE"},
	} {
		err := Check(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(role %q, nats %q) = %v, want an error with %q", tc.cfg.Role, tc.cfg.NATS.URL, err, tc.want)
		}
	}
	if err := Check(Config{DataDir: "d", Role: "ingest", Store: "postgres://127.0.0.1:1/db", NATS: cluster.Config{URL: "nats://127.0.0.1:1"}}); err != nil {
		t.Errorf("Check(ingest on PostgreSQL) = %v, want none: an ingest node signs nothing and needs no key", err)
	}
	if err := Check(Config{DataDir: "d", Role: "writer", Store: "postgres://127.0.0.1:1/db", SigningKey: "k", NATS: cluster.Config{URL: "nats://127.0.0.1:1"}}); err != nil {
		t.Errorf("Check(writer with --signing-key) = %v", err)
	}
}

// TestAllRolesInOneProcess runs --role all with --nats: one process that
// publishes what it ingests to the stream, commits the stream into its
// store, and reads it back.
func TestAllRolesInOneProcess(t *testing.T) {
	dsn := clustertest.Postgres(t)
	dir := t.TempDir()
	m := runMain(t, Config{Addr: "127.0.0.1:0", DataDir: dir, Store: dsn, SigningKey: signingKeyFile(t), NATS: cluster.Config{URL: clustertest.StartNATS(t).URL(), Stream: clustertest.Unique("T")}})
	token, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", m.URL()+"/v1/events", strings.NewReader(`{"id":"one","actor_type":"agent","actor_id":"a","source":"shell","action":"ls","result":"success"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := m.Store().Get(t.Context(), "one", agenttrail.Filter{}); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("the event never reached the store through the stream: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
