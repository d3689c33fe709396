package wire_test

import (
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []wire.Cursor{
		{Sort: agenttrail.SortTimeDesc, Position: agenttrail.Position{Time: time.Date(2025, 6, 1, 11, 59, 0, 123456789, time.UTC), Seq: 42}, Key: 7},
		{Sort: agenttrail.SortTimeAsc, Position: agenttrail.Position{Time: time.Unix(0, 0).UTC(), Seq: 0}, Key: 0},
		{Sort: agenttrail.SortSeq, Position: agenttrail.Position{Time: time.Unix(0, 1).UTC(), Seq: 1<<63 - 1}, Key: 1<<64 - 1},
	} {
		s := c.Encode()
		if len(s) != 35 || url.QueryEscape(s) != s {
			t.Errorf("Encode(%+v) = %q, want 35 URL-safe characters", c, s)
		}
		got, err := wire.DecodeCursor(s)
		if err != nil || got != c {
			t.Errorf("DecodeCursor(%q) = %+v, %v, want %+v", s, got, err, c)
		}
	}
}

// rawCursor encodes a cursor's bytes as given, valid or not.
func rawCursor(version, sort byte, nanos, seq int64, key uint64) string {
	var b [26]byte
	b[0], b[1] = version, sort
	binary.BigEndian.PutUint64(b[2:], uint64(nanos))
	binary.BigEndian.PutUint64(b[10:], uint64(seq))
	binary.BigEndian.PutUint64(b[18:], key)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func TestDecodeCursorErrors(t *testing.T) {
	good := rawCursor(1, 3, 5, 6, 7)
	if _, err := wire.DecodeCursor(good); err != nil {
		t.Fatalf("DecodeCursor(%q) error = %v, want a valid cursor", good, err)
	}
	lastBits := []byte(good)
	lastBits[34]++ // the last character carries two unused low bits
	for _, c := range []struct{ name, s string }{
		{"empty", ""},
		{"not base64", "!!!!"},
		{"truncated", good[:34]},
		{"too short", good[:20]},
		{"extended", good + "A"},
		{"padded", good + "="},
		{"standard alphabet", good[:30] + "+/+/+"},
		{"unused bits set", string(lastBits)},
		{"newline inside", good[:10] + "\n" + good[10:]},
		{"other version", rawCursor(2, 3, 5, 6, 7)},
		{"no sort", rawCursor(1, 0, 5, 6, 7)},
		{"unknown sort", rawCursor(1, 4, 5, 6, 7)},
		{"negative seq", rawCursor(1, 1, 5, -1, 7)},
	} {
		_, err := wire.DecodeCursor(c.s)
		wantField(t, "DecodeCursor("+c.name+")", err, "cursor")
	}
}

func TestFilterKey(t *testing.T) {
	key := func(raw string) uint64 { return wire.FilterKey(query(t, raw)) }
	base := key("actor_id=a&actor_id=b&source=shell&since=1h")
	for _, raw := range []string{
		"source=shell&since=1h&actor_id=b&actor_id=a",
		"actor_id=b&source=shell&actor_id=a&since=1h&limit=5&sort=seq&cursor=x",
	} {
		if got := key(raw); got != base {
			t.Errorf("FilterKey(%q) = %x, want %x (same filters)", raw, got, base)
		}
	}
	for _, raw := range []string{
		"actor_id=a&source=shell&since=1h",
		"actor_id=a&actor_id=b&source=shell&since=2h",
		"actor_id=a&actor_id=b&source=shell",
		"actor_id=a&actor_id=b&source=shell&since=1h&q=x",
		"action=a&actor_id=b&source=shell&since=1h",
	} {
		if got := key(raw); got == base {
			t.Errorf("FilterKey(%q) = %x, the key of other filters", raw, got)
		}
	}
}

func TestParseQueryCursor(t *testing.T) {
	issued := query(t, "actor_id=a&actor_id=b&since=1h&sort=seq&limit=10")
	q, err := wire.ParseQuery(issued, testNow)
	if err != nil {
		t.Fatalf("ParseQuery error = %v", err)
	}
	pos := agenttrail.Position{Time: testNow.Add(-time.Minute), Seq: 99}
	cursor := wire.NextCursor(issued, q, agenttrail.Page{Next: &pos})
	if cursor == "" {
		t.Fatal("NextCursor(page with Next) = \"\"")
	}
	later := testNow.Add(time.Minute) // the relative since is bound as written
	for _, raw := range []string{
		"actor_id=a&actor_id=b&since=1h&sort=seq&limit=10",
		"sort=seq&actor_id=b&since=1h&actor_id=a",
		"limit=200&actor_id=a&actor_id=b&since=1h&sort=seq",
	} {
		q, err := wire.ParseQuery(query(t, raw+"&cursor="+cursor), later)
		if err != nil {
			t.Errorf("ParseQuery(%q with its cursor) error = %v", raw, err)
			continue
		}
		if q.After == nil || *q.After != pos {
			t.Errorf("ParseQuery(%q with its cursor).After = %v, want %+v", raw, q.After, pos)
		}
	}
	for _, raw := range []string{
		"actor_id=a&since=1h&sort=seq",
		"actor_id=a&actor_id=b&since=2h&sort=seq",
		"actor_id=a&actor_id=b&sort=seq",
		"actor_id=a&actor_id=b&since=1h&sort=seq&org=other",
		"actor_id=a&actor_id=b&since=1h",
		"actor_id=a&actor_id=b&since=1h&sort=time",
	} {
		_, err := wire.ParseQuery(query(t, raw+"&cursor="+cursor), later)
		wantField(t, "ParseQuery("+raw+" with another query's cursor)", err, "cursor")
	}
	_, err = wire.ParseQuery(query(t, "actor_id=a&actor_id=b&since=1h&sort=seq&cursor="+cursor+"&cursor="+cursor), testNow)
	wantField(t, "ParseQuery(two cursors)", err, "cursor")
	_, err = wire.ParseQuery(query(t, "actor_id=a&actor_id=b&since=1h&sort=seq&cursor="+cursor[:30]), testNow)
	wantField(t, "ParseQuery(truncated cursor)", err, "cursor")
}

func TestNextCursor(t *testing.T) {
	v := query(t, "source=shell")
	q := agenttrail.Query{Sort: agenttrail.SortTimeAsc, Limit: 5}
	if got := wire.NextCursor(v, q, agenttrail.Page{}); got != "" {
		t.Errorf("NextCursor(last page) = %q, want \"\"", got)
	}
	pos := agenttrail.Position{Time: testNow, Seq: 3}
	c, err := wire.DecodeCursor(wire.NextCursor(v, q, agenttrail.Page{Next: &pos}))
	want := wire.Cursor{Sort: agenttrail.SortTimeAsc, Position: pos, Key: wire.FilterKey(v)}
	if err != nil || c != want {
		t.Errorf("DecodeCursor(NextCursor(...)) = %+v, %v, want %+v", c, err, want)
	}
}
