package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agenttrail/agenttrail"
)

// CursorKeySize is the size of the key that authenticates cursors.
const CursorKeySize = 32

// cursorSigner authenticates the cursors the server hands out. A cursor
// names only a keyset position and is bound to its filters, and the
// caller's filters and org scope are applied again on every page, so an
// edited cursor could never widen a query; signed, it cannot even move:
// anything but a cursor this server issued, as issued, is a 400 naming
// "cursor". It is safe for concurrent use.
type cursorSigner struct{ key []byte }

// newCursorSigner returns a signer with key, or with a random key when key
// is empty (cursors then stop working when the process restarts).
func newCursorSigner(key []byte) cursorSigner {
	if len(key) == 0 {
		key = make([]byte, CursorKeySize)
		rand.Read(key)
	}
	return cursorSigner{key: append([]byte(nil), key...)}
}

func (c cursorSigner) mac(inner string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(inner))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// sign returns inner (an wire.Cursor's text) with its MAC appended.
func (c cursorSigner) sign(inner string) string { return inner + "." + c.mac(inner) }

// open checks a signed cursor and returns the cursor text inside it.
func (c cursorSigner) open(s string) (string, error) {
	inner, mac, ok := strings.Cut(s, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(c.mac(inner))) {
		return "", agenttrail.Invalid("cursor", "is not a cursor this server issued (edited, truncated, or from before a key change); start again without it")
	}
	return inner, nil
}

// LoadCursorKey reads the cursor key in path, creating it (mode 0600) with
// a random key when it does not exist, so cursors survive restarts: a SIEM
// poller following next_cursor picks up where it left off.
func LoadCursorKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) != CursorKeySize {
			return nil, fmt.Errorf("cursor key %s: want %d bytes, found %d", path, CursorKeySize, len(key))
		}
		return key, nil
	}
	if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read cursor key: %w", err)
	}
	key = make([]byte, CursorKeySize)
	rand.Read(key)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cursor.key-*")
	if err != nil {
		return nil, fmt.Errorf("write cursor key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("write cursor key: %w", err)
	}
	return key, nil
}
