package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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
