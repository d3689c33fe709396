package wire

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Cursor is the opaque continuation token of a page of events: the keyset
// position of the page's last event, the sort it was issued for, and a key of
// the filter parameters it is bound to. A cursor carries a position only; the
// server re-applies the caller's filters and org scope on every page, so a
// cursor can never widen a query.
type Cursor struct {
	Sort     agenttrail.Sort
	Position agenttrail.Position
	Key      uint64
}

const cursorVersion = 1

var sortCodes = map[agenttrail.Sort]byte{agenttrail.SortTimeDesc: 1, agenttrail.SortTimeAsc: 2, agenttrail.SortSeq: 3}

// Encode returns the cursor's URL-safe text.
func (c Cursor) Encode() string {
	var b [1 + 1 + 8 + 8 + 8]byte
	b[0] = cursorVersion
	b[1] = sortCodes[c.Sort]
	binary.BigEndian.PutUint64(b[2:], uint64(c.Position.Time.UnixNano()))
	binary.BigEndian.PutUint64(b[10:], uint64(c.Position.Seq))
	binary.BigEndian.PutUint64(b[18:], c.Key)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeCursor parses a cursor. Anything that is not exactly a cursor this
// server issued in form (truncated, padded, another version) is an EINVALID
// error naming "cursor".
func DecodeCursor(s string) (Cursor, error) {
	// Strict: the unused low bits of the last character must be zero, and
	// the length check refuses the CR and LF the decoder skips, so each
	// cursor has exactly one text and a tampered one is refused.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(s) != base64.RawURLEncoding.EncodedLen(26) || len(b) != 26 || b[0] != cursorVersion {
		return Cursor{}, agenttrail.Invalid("cursor", "is not a valid cursor")
	}
	var c Cursor
	for s, code := range sortCodes {
		if code == b[1] {
			c.Sort = s
		}
	}
	seq := int64(binary.BigEndian.Uint64(b[10:]))
	if c.Sort == "" || seq < 0 {
		return Cursor{}, agenttrail.Invalid("cursor", "is not a valid cursor")
	}
	c.Position = agenttrail.Position{Time: time.Unix(0, int64(binary.BigEndian.Uint64(b[2:]))).UTC(), Seq: seq}
	c.Key = binary.BigEndian.Uint64(b[18:])
	return c, nil
}

// FilterKey returns the key that binds a cursor to the filter parameters of
// v, as written (a relative "since=1h" stays relative across pages). Order of
// parameters and of repeated values does not matter.
func FilterKey(v url.Values) uint64 {
	var parts []string
	for _, name := range filterParams {
		vals := append([]string(nil), v[name]...)
		sort.Strings(vals)
		for _, s := range vals {
			parts = append(parts, name+"="+s)
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return binary.BigEndian.Uint64(sum[:8])
}

// NextCursor returns the cursor to continue q's result after p, or "" when
// there is no next page.
func NextCursor(v url.Values, q agenttrail.Query, p agenttrail.Page) string {
	if p.Next == nil {
		return ""
	}
	return Cursor{Sort: q.Sort, Position: *p.Next, Key: FilterKey(v)}.Encode()
}
