package app

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/internal/clustertest"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/sink"
)

// TestClusterSharesState runs an ingest node, a writer and two query nodes
// on one store, each with a data directory of its own: a token created on
// one node works on the others at once and its revocation reaches the
// ingest node within 5 s; a cursor of one query node is good on the other;
// both sign with one key; the sink both query nodes are given runs on one
// of them only; and while the store is unreachable the ingest node goes on
// authenticating from the tokens it loaded.
func TestClusterSharesState(t *testing.T) {
	dsn := clustertest.Postgres(t)
	natsCfg := cluster.Config{URL: clustertest.StartNATS(t).URL(), Stream: clustertest.Unique("T")}
	// The ingest node reaches the store through a proxy the test cuts.
	pgProxy := clustertest.StartProxy(t, clustertest.PostgresAddr(t, dsn))
	var hookMu sync.Mutex
	hooked := map[string]int{} // receiver → events delivered
	hook := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			hookMu.Lock()
			hooked[name] += strings.Count(string(b), `"action":"ls"`)
			hookMu.Unlock()
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	sinkOf := func(u string) []sink.Config {
		sc := sink.Config{Name: "soc", Type: sink.TypeWebhook, URL: u,
			Batch: sink.BatchLimits{MaxWait: sink.Duration(10 * time.Millisecond)}}
		if err := sc.Check(); err != nil {
			t.Fatal(err)
		}
		return []sink.Config{sc}
	}
	key := signingKeyFile(t)
	node := func(role, store string, sinks []sink.Config) (*Main, string) {
		dir := t.TempDir()
		return runMain(t, Config{Addr: "127.0.0.1:0", DataDir: dir, Store: store, Role: role, NATS: natsCfg, Sinks: sinks, SigningKey: key}), dir
	}
	in, inDir := node(RoleIngest, pgProxy.Through(dsn), nil)
	_, _ = node(RoleWriter, dsn, nil)
	q1, q1Dir := node(RoleQuery, dsn, sinkOf(hook("q1")))
	q2, _ := node(RoleQuery, dsn, sinkOf(hook("q2")))
	b, err := os.ReadFile(filepath.Join(inDir, AdminTokenFile))
	if err != nil {
		t.Fatalf("the first node started made no admin token: %v", err)
	}
	admin := strings.TrimSpace(string(b))
	if _, err := os.Stat(filepath.Join(q1Dir, AdminTokenFile)); err == nil {
		t.Error("a second node made an admin token too")
	}
	if _, err := os.Stat(filepath.Join(inDir, TokensFile)); err == nil {
		t.Error("the ingest node wrote a token file; on a cluster the tokens live in the store")
	}

	do := func(method, url, token, body string) (int, string) { return httpDo(t, method, url, token, body) }
	code, body := do("POST", q1.URL()+"/v1/tokens", admin, `{"name":"agents","role":"ingest"}`)
	if code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("create a token on a query node = %d %s", code, body)
	}
	var created struct {
		Secret string `json:"secret"`
		ID     string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Secret == "" {
		t.Fatalf("created token %s: %v", body, err)
	}
	post := func(id string) (int, string) {
		return do("POST", in.URL()+"/v1/events", created.Secret,
			fmt.Sprintf(`{"id":%q,"actor_type":"agent","actor_id":"a","source":"shell","action":"ls","result":"success"}`, id))
	}
	for i := range 5 {
		if code, body := post(fmt.Sprintf("e%d", i)); code != http.StatusOK {
			t.Fatalf("POST with the token made on a query node, to the ingest node = %d %s", code, body)
		}
	}

	// A cursor from one query node is good on the other.
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	clustertest.WaitFor(t, "the events readable on the query nodes", 30*time.Second, func() bool {
		code, body := do("GET", q1.URL()+"/v1/events?limit=2", admin, "")
		return code == http.StatusOK && json.Unmarshal([]byte(body), &page) == nil && page.NextCursor != ""
	})
	if code, body := do("GET", q2.URL()+"/v1/events?limit=2&cursor="+url.QueryEscape(page.NextCursor), admin, ""); code != http.StatusOK {
		t.Errorf("a cursor of one query node, on the other = %d %s", code, body)
	}
	_, k1 := do("GET", q1.URL()+"/v1/integrity/key", admin, "")
	_, k2 := do("GET", q2.URL()+"/v1/integrity/key", admin, "")
	if k1 != k2 || !strings.Contains(k1, "key") {
		t.Errorf("the query nodes sign with different keys: %s and %s", k1, k2)
	}

	// The sink runs on one query node only: one receiver gets every
	// event, the other none.
	clustertest.WaitFor(t, "the sink delivered the events", 30*time.Second, func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		return hooked["q1"]+hooked["q2"] >= 5
	})
	hookMu.Lock()
	if hooked["q1"] > 0 && hooked["q2"] > 0 {
		t.Errorf("the sink ran on both query nodes: %v", hooked)
	}
	running, idle := q1, q2
	if hooked["q2"] > 0 {
		running, idle = q2, q1
	}
	hookMu.Unlock()
	// A replay is taken where the sink runs; the other node says where.
	if code, body := do("POST", idle.URL()+"/v1/sinks/soc/replay", admin, `{"from_seq":1}`); code != http.StatusServiceUnavailable || !strings.Contains(body, "another node") {
		t.Errorf("replay on the node the sink does not run on = %d %s, want 503 saying it runs on another node", code, body)
	}
	if code, body := do("POST", running.URL()+"/v1/sinks/soc/replay", admin, `{"from_seq":1}`); code != http.StatusOK {
		t.Errorf("replay on the node the sink runs on = %d %s", code, body)
	}

	// While the store is unreachable the ingest node authenticates from
	// the tokens it loaded, and accepts.
	pgProxy.Cut()
	for i := range 3 {
		if code, body := post(fmt.Sprintf("down%d", i)); code != http.StatusOK {
			t.Fatalf("POST to the ingest node while the store is unreachable = %d %s", code, body)
		}
		time.Sleep(300 * time.Millisecond) // across the token polls, which fail
	}
	pgProxy.Restore()

	// A revocation on a query node reaches the ingest node within 5 s.
	if code, body := do("DELETE", q2.URL()+"/v1/tokens/"+created.ID, admin, ""); code != http.StatusOK {
		t.Fatalf("revoke on a query node = %d %s", code, body)
	}
	revoked := time.Now()
	clustertest.WaitFor(t, "the revocation reaches the ingest node", 5*time.Second, func() bool {
		code, _ := post("after")
		return code == http.StatusUnauthorized
	})
	t.Logf("the ingest node refused the revoked token %v after the revocation", time.Since(revoked).Round(time.Millisecond))
}

// signingKeyFile writes a new checkpoint signing key to a file of the
// test's own, for the nodes of a cluster, and returns its path.
func signingKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signing.key")
	if _, err := integrity.LoadKey(path, true); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClusterSigningKeyOutOfStore: a cluster node signs with its
// --signing-key file and keeps no key in the store; a key an earlier
// version kept there is removed once a node runs with it from the file,
// and a different one is left and warned about.
func TestClusterSigningKeyOutOfStore(t *testing.T) {
	dsn := clustertest.Postgres(t)
	natsCfg := cluster.Config{URL: clustertest.StartNATS(t).URL(), Stream: clustertest.Unique("T")}
	shared, err := postgres.OpenShared(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	stored := func() string {
		b, _, err := shared.Get(t.Context(), sharedSigningKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	store := func(skey string) {
		if err := shared.Update(t.Context(), sharedSigningKey, func([]byte) ([]byte, error) { return []byte(skey), nil }); err != nil {
			t.Fatal(err)
		}
	}
	node := func(keyFile string) (*Main, *syncLog) {
		log := new(syncLog)
		m, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: dsn, Role: RoleQuery, NATS: natsCfg,
			SigningKey: keyFile, Logger: slog.New(slog.NewTextHandler(log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m, log
	}
	keyFile := signingKeyFile(t)
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := integrity.NewKey(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}

	// A node with a key file and none in the store puts none there.
	m, _ := node(keyFile)
	if got := stored(); got != "" {
		t.Errorf("a node with --signing-key stored a signing key: %q", got)
	}
	if got := m.signer.Key.VerifierKey(); got != key.VerifierKey() {
		t.Errorf("the node signs with %s, want --signing-key's %s", got, key.VerifierKey())
	}

	// The same key left in the store by an earlier version is removed.
	store(strings.TrimSpace(string(b)))
	node(keyFile)
	if got := stored(); got != "" {
		t.Errorf("the store still holds the key the node has from its file: %q", got)
	}

	// Another key is left, and warned about.
	other := signingKeyFile(t)
	ob, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	store(strings.TrimSpace(string(ob)))
	_, log := node(keyFile)
	if got := stored(); got != strings.TrimSpace(string(ob)) {
		t.Errorf("a key other than the node's was removed from the store: %q", got)
	}
	if !log.has("still holds a checkpoint signing key") {
		t.Error("no warning about the other key left in the store")
	}
}
