//go:build unix

package app

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDataDirectoryIsPrivate is a low finding of the second security
// review: the SQLite database and its WAL were created 0644 in a 0755
// directory, readable by every local user. Another user of the host walks
// the data directory of a server that has stored events, with the usual
// umask and a directory made by hand with 0755, and can read nothing.
func TestDataDirectoryIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			<-ran
		})
	}
	defer stop()
	token, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, m.URL()+"/v1/events",
		strings.NewReader(`{"id":"e1","actor_type":"agent","actor_id":"a","source":"shell","action":"ls","result":"success"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/events: %v %v", resp, err)
	}
	resp.Body.Close()
	// The WAL and shared-memory files exist while the store is open.
	for _, f := range []string{StoreFile, StoreFile + "-wal", StoreFile + "-shm"} {
		waitExists(t, filepath.Join(dir, f))
	}
	walk := func() {
		t.Helper()
		n := 0
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return nil // a temp file gone since
			}
			n++
			if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s: mode %v, want nothing for group and others", path, perm)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 6 {
			t.Errorf("walked %d files and directories; the check cannot fail", n)
		}
	}
	walk()
	stop()
	// A data directory left by an older version, with a readable store,
	// is narrowed when the next server opens it.
	for _, f := range []string{dir, filepath.Join(dir, StoreFile)} {
		if err := os.Chmod(f, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m2, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	walk()
}

func waitExists(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not exist", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
