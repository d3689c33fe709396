package integrity_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/storetest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trail.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// execSQL runs SQL on the SQLite file at path directly, as someone with
// write access to the database would.
func execSQL(t *testing.T, path, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func newKey(t *testing.T) *integrity.Key {
	t.Helper()
	k, err := integrity.LoadKey(filepath.Join(t.TempDir(), "signing.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "signing.key")
	if _, err := integrity.LoadKey(file, false); err == nil {
		t.Fatal("LoadKey(missing file, no create) = nil error")
	}
	k, err := integrity.LoadKey(file, true)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key mode = %v, %v, want 0600", fi.Mode(), err)
	}
	again, err := integrity.LoadKey(file, true)
	if err != nil || again.VerifierKey() != k.VerifierKey() {
		t.Fatalf("LoadKey(again) = %v, %v, want the same key %s", again.VerifierKey(), err, k.VerifierKey())
	}
	if !strings.HasPrefix(k.VerifierKey(), "agenttrail+") {
		t.Errorf("VerifierKey() = %s, want agenttrail+<hash>+<key>", k.VerifierKey())
	}
}

func TestCheckpointSignOpen(t *testing.T) {
	k := newKey(t)
	root := tlog.RecordHash([]byte("x"))
	c, err := k.Sign("acme", 42, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(c.Note), "agenttrail/acme\n42\n") {
		t.Errorf("note = %q, want a C2SP checkpoint of agenttrail/acme at 42", c.Note)
	}
	got, err := integrity.OpenCheckpoint(c.Note, k.VerifierKey())
	if err != nil || got.Org != "acme" || got.Size != 42 || got.Root != root {
		t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
	}
	_, err = integrity.OpenCheckpoint(c.Note, newKey(t).VerifierKey())
	var unknown *note.UnverifiedNoteError
	if !errors.As(err, &unknown) {
		t.Errorf("OpenCheckpoint(another key) = %v, want an unknown verifier", err)
	}
	bad := []byte(strings.Replace(string(c.Note), "42", "43", 1))
	var invalid *note.InvalidSignatureError
	if _, err := integrity.OpenCheckpoint(bad, k.VerifierKey()); !errors.As(err, &invalid) {
		t.Errorf("OpenCheckpoint(edited) = %v, want invalid signature", err)
	}
}

// TestSignerConsistent signs as the tree grows, then rewrites a stored
// hash behind the store's back: the signer refuses to sign the rewritten
// tree instead of signing a checkpoint inconsistent with the last one.
func TestSignerConsistent(t *testing.T) {
	s, path := openStore(t)
	now := storetest.Base()
	dir := t.TempDir()
	sg := &integrity.Signer{Log: s, Key: newKey(t), Every: 100, Interval: time.Minute, Dir: dir,
		Now: func() time.Time { return now }}
	ctx := t.Context()
	events := storetest.Events(1, 300, storetest.Base(), time.Hour)
	storetest.AppendAll(t, s, events[:50], 50)
	if cs, err := sg.SignAll(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("SignAll(50 new events, no time passed) = %d, %v, want none", len(cs), err)
	}
	now = now.Add(time.Minute)
	cs, err := sg.SignAll(ctx)
	if err != nil || len(cs) != 2 {
		t.Fatalf("SignAll(a minute later) = %d, %v, want one per org", len(cs), err)
	}
	storetest.AppendAll(t, s, events[50:300], 250)
	cs, err = sg.SignAll(ctx)
	if err != nil || len(cs) == 0 {
		t.Fatalf("SignAll(250 more) = %d, %v, want the org past 100 new events", len(cs), err)
	}
	if _, err := os.Stat(filepath.Join(dir, cs[0].Org, "")); err != nil {
		t.Errorf("checkpoint dir: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.checkpoint"))
	if len(files) < 3 {
		t.Errorf("checkpoint files = %v, want one per checkpoint", files)
	}
	org := cs[0].Org
	storetest.AppendAll(t, s, storetest.Events(2, 20, storetest.Base(), time.Hour), 20)
	// Rewrite history: every stored hash of the org, as someone who edited
	// an event and recomputed its tree would.
	execSQL(t, path, "UPDATE tree_hashes SET hashes = zeroblob(length(hashes)) WHERE org = ?", org)
	if _, err := sg.SignOrg(ctx, org); agenttrail.ErrorCode(err) != agenttrail.ECONFLICT {
		t.Fatalf("SignOrg(rewritten tree) = %v, want a conflict", err)
	}
}

// TestSignerRecords records each checkpoint as an audit event of its org
// (which sinks then deliver): the record grows the tree by one leaf, which
// alone calls for no new checkpoint, while one more event does.
func TestSignerRecords(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	now := storetest.Base()
	var recorded []agenttrail.Event
	sg := &integrity.Signer{Log: s, Key: newKey(t), Interval: time.Minute, Events: s,
		Now: func() time.Time { return now },
		Record: func(ctx context.Context, e agenttrail.Event) error {
			recorded = append(recorded, e)
			_, err := s.Append(ctx, []agenttrail.Event{e})
			return err
		}}
	events := storetest.Events(1, 40, storetest.Base(), time.Hour)
	for i := range events {
		events[i].Org = "acme"
	}
	storetest.AppendAll(t, s, events[:30], 30)
	c, err := sg.SignOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(recorded) != 1 || recorded[0].Action != "integrity.checkpoint" || !strings.Contains(string(recorded[0].Metadata), "agenttrail/acme\\n30\\n") {
		t.Fatalf("recorded %+v, want the checkpoint of acme at 30", recorded)
	}
	if err := recorded[0].Validate(now); err != nil {
		t.Fatalf("checkpoint record does not validate: %v", err)
	}
	for range 3 {
		now = now.Add(2 * time.Minute)
		if cs, err := sg.SignAll(ctx); err != nil || len(cs) != 0 {
			t.Fatalf("SignAll(only the record is new) = %+v, %v, want nothing signed", cs, err)
		}
	}
	storetest.AppendAll(t, s, events[30:31], 1)
	now = now.Add(2 * time.Minute)
	cs, err := sg.SignAll(ctx)
	if err != nil || len(cs) != 1 || cs[0].Size != c.Size+2 {
		t.Fatalf("SignAll(one event after the record) = %+v, %v, want a checkpoint at %d", cs, err, c.Size+2)
	}
}
