package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
	"golang.org/x/mod/sumdb/tlog"
)

// refTree is the reference model of one org's tree: stored hashes in
// memory, built with tlog from the events as the store returns them.
type refTree struct {
	hashes []tlog.Hash
	size   int64
}

func (r *refTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = r.hashes[x]
	}
	return out, nil
}

func (r *refTree) add(t *testing.T, e *agenttrail.Event) {
	t.Helper()
	h, _ := integrity.LeafHash(e, nil)
	hs, err := tlog.StoredHashesForRecordHash(r.size, h, r)
	if err != nil {
		t.Fatal(err)
	}
	r.hashes = append(r.hashes, hs...)
	r.size++
}

// CheckTrees checks that each org's tree in s has one leaf per event of
// stored (every event the org ever stored, in seq order) and the same root
// as a tree built from the events as s returns them.
func CheckTrees(t *testing.T, s agenttrail.Store, stored []agenttrail.Event) map[string]tlog.Hash {
	t.Helper()
	ctx := t.Context()
	l := as[integrity.Log](t, s)
	roots := map[string]tlog.Hash{}
	for _, org := range orgs() {
		var ref refTree
		n := int64(0)
		for i := range stored {
			e := &stored[i]
			if e.Org != org {
				continue
			}
			if e.LogIndex == nil || *e.LogIndex != n {
				t.Fatalf("event %s (org %s, seq %d): log_index = %v, want %d", e.ID, org, e.Seq, e.LogIndex, n)
			}
			ref.add(t, e)
			n++
		}
		size, err := l.TreeSize(ctx, org)
		if err != nil || size != n {
			t.Fatalf("TreeSize(%s) = %d, %v, want %d", org, size, err, n)
		}
		want, err := tlog.TreeHash(n, &ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tlog.TreeHash(n, integrity.HashReader(ctx, l, org))
		if err != nil || got != want {
			t.Fatalf("tree hash of %s at %d = %v, %v, want %v (the leaves are not the stored events)", org, n, got, err, want)
		}
		for i := int64(0); i < n; i += max(1, n/7) {
			p, err := tlog.ProveRecord(n, i, integrity.HashReader(ctx, l, org))
			if err != nil {
				t.Fatalf("ProveRecord(%d, %d) of %s: %v", n, i, org, err)
			}
			if err := tlog.CheckRecord(p, n, want, i, ref.hashes[tlog.StoredHashIndex(0, i)]); err != nil {
				t.Fatalf("CheckRecord(%d, %d) of %s: %v", n, i, org, err)
			}
		}
		roots[org] = want
	}
	return roots
}

// testTree appends events of two orgs, with duplicates and nanosecond
// times (which PostgreSQL keeps to the microsecond: the leaf must be of the
// event as stored), and checks the trees against the model after every
// batch, then across retention and reopening.
func testTree(t *testing.T, s agenttrail.Store) {
	ctx := t.Context()
	events := Events(7, 600, Base(), 48*time.Hour)
	for i := range events {
		if i%3 == 0 {
			events[i].Time = events[i].Time.Add(789 * time.Nanosecond)
			events[i].ReceivedAt = events[i].ReceivedAt.Add(123 * time.Nanosecond)
		}
	}
	l := as[integrity.Log](t, s)
	for _, org := range orgs() {
		if n, err := l.TreeSize(ctx, org); err != nil || n != 0 {
			t.Fatalf("TreeSize(%s) of an empty store = %d, %v, want 0", org, n, err)
		}
	}
	for _, b := range [][2]int{{0, 1}, {1, 2}, {2, 200}, {150, 450}, {450, 600}} {
		batch := append([]agenttrail.Event(nil), events[b[0]:b[1]]...)
		if _, err := s.Append(ctx, batch); err != nil {
			t.Fatalf("Append: %v", err)
		}
		for i := range batch {
			if (batch[i].Seq == 0) != (batch[i].LogIndex == nil) {
				t.Fatalf("Append: event %s has seq %d and log_index %v", batch[i].ID, batch[i].Seq, batch[i].LogIndex)
			}
		}
		CheckTrees(t, s, all(t, s, agenttrail.Filter{}))
	}
	stored := all(t, s, agenttrail.Filter{})
	before := CheckTrees(t, s, stored)
	got, err := s.Get(ctx, stored[5].ID, agenttrail.Filter{Org: []string{stored[5].Org}})
	if err != nil || got.LogIndex == nil || *got.LogIndex != *stored[5].LogIndex {
		t.Fatalf("Get(%s) log_index = %v, %v, want %d", stored[5].ID, got.LogIndex, err, *stored[5].LogIndex)
	}

	// Retention deletes events, never leaves: every root stays.
	if _, err := s.DeleteBefore(ctx, Base().Add(24*time.Hour)); err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	for _, org := range orgs() {
		var n int64
		for i := range stored {
			if stored[i].Org == org {
				n++
			}
		}
		root, err := tlog.TreeHash(n, integrity.HashReader(ctx, l, org))
		if err != nil || root != before[org] {
			t.Fatalf("tree hash of %s after retention = %v, %v, want %v", org, root, err, before[org])
		}
	}
	more := Events(8, 50, Base().Add(40*time.Hour), time.Hour)
	if _, err := s.Append(ctx, more); err != nil {
		t.Fatalf("Append after retention: %v", err)
	}
	CheckTrees(t, s, append(stored, more...))
}

// testCheckpoints checks that checkpoints are stored once per org and
// size, read back whole, and listed oldest first.
func testCheckpoints(t *testing.T, s agenttrail.Store) {
	ctx := t.Context()
	l := as[integrity.Log](t, s)
	if _, err := l.LatestCheckpoint(ctx, "acme"); agenttrail.ErrorCode(err) != agenttrail.ENOTFOUND {
		t.Fatalf("LatestCheckpoint(no checkpoint) = %v, want ENOTFOUND", err)
	}
	at := Base()
	var want []integrity.Checkpoint
	for i, size := range []int64{1, 10, 300} {
		c := integrity.Checkpoint{Org: "acme", Size: size, Time: at.Add(time.Duration(i) * time.Minute),
			Root: tlog.RecordHash([]byte{byte(i)}), Note: []byte("note " + string(rune('a'+i)) + "\n")}
		want = append(want, c)
		if err := l.AddCheckpoint(ctx, c); err != nil {
			t.Fatalf("AddCheckpoint: %v", err)
		}
	}
	other := want[1]
	other.Note = []byte("another\n")
	if err := l.AddCheckpoint(ctx, other); err != nil {
		t.Fatalf("AddCheckpoint(same size again): %v", err)
	}
	if err := l.AddCheckpoint(ctx, integrity.Checkpoint{Org: "globex", Size: 5, Time: at, Note: []byte("g\n")}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Checkpoints(ctx, "acme", time.Time{}, 100)
	if err != nil || len(got) != 3 {
		t.Fatalf("Checkpoints(acme) = %d, %v, want 3", len(got), err)
	}
	for i := range got {
		if got[i].Org != want[i].Org || got[i].Size != want[i].Size || got[i].Root != want[i].Root ||
			!got[i].Time.Equal(want[i].Time) || !bytes.Equal(got[i].Note, want[i].Note) {
			t.Errorf("Checkpoints(acme)[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, err := l.Checkpoints(ctx, "acme", at.Add(time.Minute), 1); err != nil || len(got) != 1 || got[0].Size != 10 {
		t.Errorf("Checkpoints(acme, since 1m, limit 1) = %+v, %v, want size 10", got, err)
	}
	if c, err := l.LatestCheckpoint(ctx, "acme"); err != nil || c.Size != 300 {
		t.Errorf("LatestCheckpoint(acme) = %+v, %v, want size 300", c, err)
	}
	if _, err := s.DeleteBefore(ctx, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Checkpoints(ctx, "acme", time.Time{}, 100); err != nil || len(got) != 3 {
		t.Errorf("Checkpoints after retention = %d, %v, want 3 (kept forever)", len(got), err)
	}
}
