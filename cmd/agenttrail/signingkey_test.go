package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/internal/clustertest"
	"github.com/agenttrail/agenttrail/postgres"
)

// TestSigningKeyCommand: signing-key writes a new key (mode 0600) that
// serve loads, never over an existing file, prints one with "-", and with
// --store writes the key a cluster kept in its store.
func TestSigningKeyCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "signing.key")
	code, _, errOut := runCmd(t, "signing-key", file)
	if code != 0 {
		t.Fatalf("signing-key FILE = %d: %s", code, errOut)
	}
	key, err := integrity.LoadKey(file, false)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if !strings.Contains(errOut, key.VerifierKey()) {
		t.Errorf("signing-key printed %q, want the verifier key %s", errOut, key.VerifierKey())
	}
	if code, _, _ := runCmd(t, "signing-key", file); code == 0 {
		t.Error("signing-key over an existing key file succeeded")
	}
	if again, err := integrity.LoadKey(file, false); err != nil || again.VerifierKey() != key.VerifierKey() {
		t.Errorf("the key file changed: %v", err)
	}
	code, out, _ := runCmd(t, "signing-key", "-")
	if _, err := integrity.NewKey(strings.TrimSpace(out)); code != 0 || err != nil {
		t.Errorf("signing-key - = %d %q: %v", code, out, err)
	}
	if code, _, _ := runCmd(t, "signing-key"); code != 2 {
		t.Errorf("signing-key without FILE = %d, want 2", code)
	}

	// --store: the key an earlier version kept in the store.
	dsn := clustertest.Postgres(t)
	if code, _, errOut := runCmd(t, "signing-key", filepath.Join(dir, "none.key"), "--store", dsn); code != 1 || !strings.Contains(errOut, "holds no signing key") {
		t.Errorf("signing-key --store of a store without a key = %d %s", code, errOut)
	}
	shared, err := postgres.OpenShared(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	b, _ := os.ReadFile(file)
	if err := shared.Update(t.Context(), "signing_key", func([]byte) ([]byte, error) { return b, nil }); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "moved.key")
	if code, _, errOut := runCmd(t, "signing-key", moved, "--store", dsn); code != 0 {
		t.Fatalf("signing-key --store = %d: %s", code, errOut)
	}
	if got, err := integrity.LoadKey(moved, false); err != nil || got.VerifierKey() != key.VerifierKey() {
		t.Errorf("signing-key --store wrote another key than the store's: %v", err)
	}
}
