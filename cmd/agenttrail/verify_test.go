package main

import (
	"bytes"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/storetest"

	_ "modernc.org/sqlite" // the SQLite file, edited behind the server's back
)

// runExit runs the binary and returns its stdout and exit code.
func runExit(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("agenttrail %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String() + stderr.String(), code
}

// TestAuditorCommands runs the README's three commands of an auditor
// against `agenttrail serve`: the key, export --bundle and verify (exit 0),
// then edits an event in the SQLite file behind the server's back: the new
// bundle names it and verify exits 1. A checkpoint saved from the first
// bundle still verifies against the live log with --server --checkpoint.
func TestAuditorCommands(t *testing.T) {
	dir := t.TempDir()
	addr, data := freeAddr(t), filepath.Join(dir, "agenttrail-data")
	p := startServe(t, addr, data, "--checkpoint-dir", filepath.Join(dir, "checkpoints"))
	c := p.client()
	events := storetest.Events(1, 300, time.Now().Add(-2*time.Hour), time.Hour)
	for i := range events {
		events[i].Org = "acme"
	}
	if _, err := c.Ingest(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	key, err := c.IntegrityKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	srv := []string{"--server", p.url, "--data", data}
	out, code := runExit(t, dir, append([]string{"export", "--org", "acme", "--bundle", "acme.zip"}, srv...)...)
	if code != 0 {
		t.Fatalf("export --bundle: exit %d\n%s", code, out)
	}
	out, code = runExit(t, dir, "verify", "acme.zip", "--key", key)
	if code != 0 || !strings.Contains(out, "VERIFIED: org acme, leaves 0..299 of 300") {
		t.Fatalf("verify (untouched) = exit %d\n%s", code, out)
	}
	saved, err := filepath.Glob(filepath.Join(dir, "checkpoints", "acme", "*.checkpoint"))
	if err != nil || len(saved) == 0 {
		t.Fatalf("--checkpoint-dir holds %v, %v; want acme's checkpoint", saved, err)
	}

	db, err := sql.Open("sqlite", filepath.Join(data, "agenttrail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE events SET actor_id = 'someone-else' WHERE id = ?", events[42].ID); err != nil {
		t.Fatal(err)
	}
	out, code = runExit(t, dir, append([]string{"export", "--org", "acme", "--bundle", "again.zip"}, srv...)...)
	if code != 0 {
		t.Fatalf("export --bundle: exit %d\n%s", code, out)
	}
	out, code = runExit(t, dir, "verify", "again.zip", "--key", key)
	if code != 1 || !strings.Contains(out, "event "+events[42].ID+" leaf 42: content altered") || !strings.Contains(out, "FAILED") {
		t.Fatalf("verify (one event edited in the database) = exit %d\n%s", code, out)
	}
	// Another key than the server's: unknown key.
	other, err := integrity.LoadKey(filepath.Join(dir, "other.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	if out, code = runExit(t, dir, "verify", "acme.zip", "--key", other.VerifierKey()); code != 1 || !strings.Contains(out, "unknown key") {
		t.Fatalf("verify --key (another key) = exit %d\n%s", code, out)
	}

	out, code = runExit(t, dir, append([]string{"verify", "--checkpoint", saved[0], "--key", key}, srv...)...)
	if code != 0 || !strings.Contains(out, "VERIFIED") {
		t.Fatalf("verify --server --checkpoint = exit %d\n%s", code, out)
	}
	// A saved checkpoint whose signature is broken.
	b, _ := os.ReadFile(saved[0])
	bad := filepath.Join(dir, "bad.checkpoint")
	os.WriteFile(bad, bytes.Replace(b, []byte("acme\n"), []byte("acme\n1"), 1), 0o600)
	out, code = runExit(t, dir, append([]string{"verify", "--checkpoint", bad, "--key", key}, srv...)...)
	if code != 1 || !strings.Contains(out, "signature invalid") {
		t.Fatalf("verify --checkpoint (edited checkpoint) = exit %d\n%s", code, out)
	}
}
