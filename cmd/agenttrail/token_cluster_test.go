package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/internal/clustertest"
)

// TestTokenCommandsOnCluster: on a cluster node's data directory the token
// commands refuse and name --store, since its tokens live in the store;
// with --store they create and revoke the tokens every node reads.
func TestTokenCommandsOnCluster(t *testing.T) {
	dsn := clustertest.Postgres(t)
	data := t.TempDir()
	m, err := app.Open(t.Context(), app.Config{Addr: "127.0.0.1:0", DataDir: data, Store: dsn, Role: app.RoleQuery,
		SigningKey: writeSigningKey(t),
		NATS:       cluster.Config{URL: clustertest.StartNATS(t).URL(), Stream: clustertest.Unique("T")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })

	for _, args := range [][]string{
		{"token", "create", "--role", "read", "--org", "*", "--name", "lost", "--data", data},
		{"token", "revoke", "admin", "--data", data},
		{"token", "list", "--data", data},
		{"console", "--data", data},
	} {
		if code, _, errOut := runCmd(t, args...); code != 1 || !strings.Contains(errOut, "--store postgres://") {
			t.Errorf("%s on a cluster node's data directory = %d %s, want a refusal naming --store", strings.Join(args[:2], " "), code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(data, app.TokensFile)); err == nil {
		t.Error("a refused token command wrote a token file in the node's data directory")
	}
	if code, out, _ := runCmd(t, "token", "list", "--store", dsn); code != 0 || strings.Contains(out, "lost") {
		t.Errorf("token list --store = %d:\n%s\nwant no token made by the refused create", code, out)
	}

	code, out, errOut := runCmd(t, "token", "create", "--role", "read", "--org", "*", "--name", "reader", "--store", dsn)
	if code != 0 {
		t.Fatalf("token create --store = %d: %s", code, errOut)
	}
	token := strings.Fields(out)[len(strings.Fields(out))-1]
	get := func() int {
		req, _ := http.NewRequest("GET", m.URL()+"/v1/events?limit=1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("a token made with token create --store, on a node of the cluster = %d, want 200", code)
	}
	if code, out, _ := runCmd(t, "token", "list", "--store", dsn); code != 0 || !strings.Contains(out, "reader") || !strings.Contains(out, "admin") {
		t.Errorf("token list --store = %d:\n%s\nwant the admin and reader tokens", code, out)
	}
	if code, _, errOut := runCmd(t, "token", "revoke", "reader", "--store", dsn); code != 0 {
		t.Fatalf("token revoke --store = %d: %s", code, errOut)
	}
	clustertest.WaitFor(t, "the node refuses the token revoked with --store", 10*time.Second, func() bool { return get() == http.StatusUnauthorized })
}

// writeSigningKey writes a new signing key to a file of the test's own and
// returns its path.
func writeSigningKey(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signing.key")
	if _, err := integrity.LoadKey(path, true); err != nil {
		t.Fatal(err)
	}
	return path
}
