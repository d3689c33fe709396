package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/storetest"
	"golang.org/x/mod/sumdb/tlog"
)

// TestBackfill opens a store whose events predate the integrity migration
// (no log_index, no tree, as migration 8 leaves an older file): Open gives
// them their leaves in commit order, the trees are the ones Append would
// have grown, and new events follow them.
func TestBackfill(t *testing.T) {
	defer func(n int) { backfillChunk = n }(backfillChunk)
	backfillChunk = 100
	path := filepath.Join(t.TempDir(), "trail.db")
	s := openAt(t, path)
	storetest.AppendAll(t, s, storetest.Events(1, 2*backfillChunk+23, storetest.Base(), time.Hour), 100)
	ctx := t.Context()
	roots := map[string]tlog.Hash{}
	sizes := map[string]int64{}
	orgs, err := s.TreeOrgs(ctx)
	if err != nil || len(orgs) != 2 {
		t.Fatalf("TreeOrgs() = %v, %v", orgs, err)
	}
	for _, org := range orgs {
		if sizes[org], err = s.TreeSize(ctx, org); err != nil {
			t.Fatal(err)
		}
		if roots[org], err = tlog.TreeHash(sizes[org], integrity.HashReader(ctx, s, org)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.ExecContext(ctx, "UPDATE events SET log_index = NULL"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, "DELETE FROM tree_hashes"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openAt(t, path)
	if n := count(t, s, "SELECT count(*) FROM events WHERE log_index IS NULL"); n != 0 {
		t.Fatalf("events without log_index after Open = %d, want 0", n)
	}
	for _, org := range orgs {
		size, err := s.TreeSize(ctx, org)
		if err != nil || size != sizes[org] {
			t.Fatalf("TreeSize(%s) after backfill = %d, %v, want %d", org, size, err, sizes[org])
		}
		root, err := tlog.TreeHash(size, integrity.HashReader(ctx, s, org))
		if err != nil || root != roots[org] {
			t.Fatalf("root of %s after backfill = %v, %v, want %v", org, root, err, roots[org])
		}
	}
	more := storetest.AppendAll(t, s, storetest.Events(2, 10, storetest.Base(), time.Hour), 10)
	for _, e := range more {
		if e.LogIndex == nil || *e.LogIndex < sizes[e.Org] {
			t.Fatalf("new event's log_index = %v, want from %d on", e.LogIndex, sizes[e.Org])
		}
	}
}
