package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agenttrail/agenttrail/server"
)

func TestLoadCursorKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cursor.key")
	k1, err := LoadCursorKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadCursorKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != server.CursorKeySize || string(k1) != string(k2) {
		t.Fatalf("LoadCursorKey twice = %x, %x; want the same %d-byte key", k1, k2, server.CursorKeySize)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cursor key mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7311": true, "localhost:7311": true, "[::1]:7311": true,
		"0.0.0.0:0": false, ":0": false, "[::]:0": false, "10.0.0.1:7311": false, "nonsense": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}
