//go:build unix

package private

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestMkdirAll(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	base := t.TempDir()
	wide := filepath.Join(base, "made-by-hand")
	if err := os.Mkdir(wide, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{wide, filepath.Join(base, "new", "nested")} {
		if err := MkdirAll(dir); err != nil {
			t.Fatalf("MkdirAll(%s) = %v", dir, err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o700 {
			t.Errorf("MkdirAll(%s): mode %v, want 0700", dir, got)
		}
	}
}
