package integrity_test

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// store is a store under test and a way to edit its database directly,
// behind the store's back, as someone with write access to it would.
type store interface {
	agenttrail.Store
	integrity.Log
}

type backend struct {
	name string
	open func(t *testing.T) (store, func(t *testing.T, query string, args ...any))
}

func backends(t *testing.T) []backend {
	bs := []backend{{"sqlite", func(t *testing.T) (store, func(*testing.T, string, ...any)) {
		s, path := openStore(t)
		return s, func(t *testing.T, q string, args ...any) { t.Helper(); execSQL(t, path, q, args...) }
	}}}
	dsn := os.Getenv("AGENTTRAIL_TEST_POSTGRES")
	if dsn == "" {
		return bs
	}
	return append(bs, backend{"postgres", func(t *testing.T) (store, func(*testing.T, string, ...any)) {
		s, db := openPostgres(t, dsn)
		return s, func(t *testing.T, q string, args ...any) {
			t.Helper()
			if _, err := db.Exec(t.Context(), dollars(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}})
}

// dollars numbers the ? placeholders of q as PostgreSQL's $1, $2, ….
func dollars(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// openPostgres opens a store in a new schema of the test database, and a
// direct connection to that schema.
func openPostgres(t *testing.T, dsn string) (store, *pgx.Conn) {
	t.Helper()
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to AGENTTRAIL_TEST_POSTGRES: %v", err)
	}
	schema := fmt.Sprintf("integrity_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(context.Background())
	})
	sdsn := dsn + "?search_path=" + schema
	if strings.Contains(dsn, "?") {
		sdsn = dsn + "&search_path=" + schema
	}
	s, err := postgres.Open(ctx, sdsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := pgx.Connect(ctx, sdsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return s, db
}

// events returns n events of org acme, one a minute from start.
func events(seed int64, n int, start time.Time) []agenttrail.Event {
	ev := storetest.Events(seed, n, start, time.Duration(n)*time.Minute)
	for i := range ev {
		ev[i].Org = "acme"
		ev[i].Time = start.Add(time.Duration(i) * time.Minute)
		ev[i].ReceivedAt = ev[i].Time.Add(time.Second)
	}
	return ev
}

type fixture struct {
	s      store
	exec   func(t *testing.T, query string, args ...any)
	key    *integrity.Key
	signer *integrity.Signer
	stored []agenttrail.Event
}

func newFixture(t *testing.T, b backend, n int) *fixture {
	s, exec := b.open(t)
	key := newKey(t)
	f := &fixture{s: s, exec: exec, key: key, signer: &integrity.Signer{Log: s, Key: key}}
	f.stored = storetest.AppendAll(t, s, events(1, n, storetest.Base()), 100)
	return f
}

// bundle signs a checkpoint of acme's tree as it is and exports the bundle
// of filter (org acme).
func (f *fixture) bundle(t *testing.T, filter agenttrail.Filter) []byte {
	t.Helper()
	c, err := f.signer.SignOrg(t.Context(), "acme")
	if err != nil {
		t.Fatalf("SignOrg: %v", err)
	}
	filter.Org = []string{"acme"}
	var buf bytes.Buffer
	if _, err := integrity.WriteBundle(t.Context(), &buf, f.s, filter, c, f.key.VerifierKey()); err != nil {
		t.Fatalf("WriteBundle: %v", err)
	}
	return buf.Bytes()
}

func verify(t *testing.T, bundle []byte, vkey string) *integrity.Report {
	t.Helper()
	r, err := integrity.Verify(bytes.NewReader(bundle), int64(len(bundle)), vkey)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// wantOK checks that the bundle verifies.
func (f *fixture) wantOK(t *testing.T, bundle []byte) *integrity.Report {
	t.Helper()
	r := verify(t, bundle, f.key.VerifierKey())
	if !r.OK() {
		t.Fatalf("Verify(untouched bundle) = %v, want no problem", r.Problems)
	}
	return r
}

// wantProblem checks that the report lists a problem of event id (any
// when "") whose text holds what.
func wantProblem(t *testing.T, r *integrity.Report, id, what string) {
	t.Helper()
	for _, p := range r.Problems {
		if (id == "" || p.ID == id) && strings.Contains(p.String(), what) {
			return
		}
	}
	t.Fatalf("Verify problems = %v, want %q of event %q", r.Problems, what, id)
}

// TestTamper edits the database of each real store directly and checks
// that the bundle exported after it says what was done; each case first
// shows the untouched bundle verifies.
func TestTamper(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Run("FieldChanged", func(t *testing.T) {
				f := newFixture(t, b, 300)
				f.wantOK(t, f.bundle(t, agenttrail.Filter{}))
				victim := f.stored[123]
				f.exec(t, "UPDATE events SET description = ? WHERE id = ?", "nothing to see here", victim.ID)
				r := verify(t, f.bundle(t, agenttrail.Filter{}), f.key.VerifierKey())
				wantProblem(t, r, victim.ID, "content altered")
				if len(r.Problems) != 1 {
					t.Errorf("problems = %v, want exactly the edited event", r.Problems)
				}
			})
			t.Run("RowDeleted", func(t *testing.T) {
				f := newFixture(t, b, 300)
				f.wantOK(t, f.bundle(t, agenttrail.Filter{}))
				victim := f.stored[200]
				f.exec(t, "DELETE FROM events WHERE id = ?", victim.ID)
				r := verify(t, f.bundle(t, agenttrail.Filter{}), f.key.VerifierKey())
				wantProblem(t, r, "", fmt.Sprintf("missing leaf %d", *victim.LogIndex))
			})
			t.Run("SeqSwapped", func(t *testing.T) {
				f := newFixture(t, b, 300)
				f.wantOK(t, f.bundle(t, agenttrail.Filter{}))
				a, c := f.stored[50], f.stored[51]
				f.exec(t, "UPDATE events SET seq = ? WHERE seq = ?", -1, a.Seq)
				f.exec(t, "UPDATE events SET seq = ? WHERE seq = ?", a.Seq, c.Seq)
				f.exec(t, "UPDATE events SET seq = ? WHERE seq = ?", c.Seq, -1)
				r := verify(t, f.bundle(t, agenttrail.Filter{}), f.key.VerifierKey())
				wantProblem(t, r, a.ID, "out of order")
			})
			t.Run("NewestDeleted", func(t *testing.T) {
				f := newFixture(t, b, 300)
				f.wantOK(t, f.bundle(t, agenttrail.Filter{}))
				saved, err := f.s.LatestCheckpoint(t.Context(), "acme")
				if err != nil {
					t.Fatal(err)
				}
				// Cut the newest 100 events off, their leaves and the
				// checkpoints that cover them, and write new history
				// after it: the log now looks whole, and signs.
				cut := f.stored[200].Seq
				f.exec(t, "DELETE FROM events WHERE seq >= ?", cut)
				f.exec(t, "DELETE FROM tree_hashes WHERE org = ? AND first >= ?", "acme", tlog.StoredHashIndex(0, 200))
				f.exec(t, "DELETE FROM checkpoints WHERE org = ?", "acme")
				storetest.AppendAll(t, f.s, events(2, 150, storetest.Base().Add(24*time.Hour)), 150)
				f.wantOK(t, f.bundle(t, agenttrail.Filter{}))
				latest, err := f.s.LatestCheckpoint(t.Context(), "acme")
				if err != nil {
					t.Fatal(err)
				}
				p, err := tlog.ProveTree(latest.Size, saved.Size, integrity.HashReader(t.Context(), f.s, "acme"))
				if err != nil {
					t.Fatal(err)
				}
				err = integrity.CheckConsistency(saved.Note, latest.Note, f.key.VerifierKey(), p)
				if err == nil || !strings.Contains(err.Error(), "not consistent") {
					t.Fatalf("CheckConsistency(saved checkpoint, rewritten log) = %v, want not consistent", err)
				}
				// Only cut, nothing appended: the log is shorter than the
				// saved checkpoint.
				f.exec(t, "DELETE FROM checkpoints WHERE org = ?", "acme")
				f.exec(t, "DELETE FROM tree_hashes WHERE org = ? AND first >= ?", "acme", tlog.StoredHashIndex(0, 200))
				f.exec(t, "DELETE FROM events WHERE seq >= ?", cut)
				short, err := f.signer.SignOrg(t.Context(), "acme")
				if err != nil {
					t.Fatal(err)
				}
				err = integrity.CheckConsistency(saved.Note, short.Note, f.key.VerifierKey(), nil)
				if err == nil || !strings.Contains(err.Error(), "truncated") {
					t.Fatalf("CheckConsistency(saved checkpoint, cut log) = %v, want truncated", err)
				}
			})
			t.Run("ResignedWithAnotherKey", func(t *testing.T) {
				f := newFixture(t, b, 50)
				bundle := f.bundle(t, agenttrail.Filter{})
				f.wantOK(t, bundle)
				c, err := integrity.OpenCheckpoint(readEntry(t, bundle, "checkpoint"), f.key.VerifierKey())
				if err != nil {
					t.Fatal(err)
				}
				other := newKey(t)
				forged, err := other.Sign(c.Org, c.Size, c.Root, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				bundle = rewriteEntry(t, bundle, "checkpoint", func([]byte) []byte { return forged.Note })
				bundle = rewriteEntry(t, bundle, "key", func([]byte) []byte { return []byte(other.VerifierKey() + "\n") })
				wantProblem(t, verify(t, bundle, f.key.VerifierKey()), "", "unknown key")
			})
			t.Run("BundleEdited", func(t *testing.T) {
				f := newFixture(t, b, 50)
				bundle := f.bundle(t, agenttrail.Filter{})
				f.wantOK(t, bundle)
				victim := f.stored[17]
				bundle = rewriteEntry(t, bundle, "events.ndjson", func(b []byte) []byte {
					lines := strings.Split(string(b), "\n")
					for i, l := range lines {
						if strings.Contains(l, `"id":"`+victim.ID+`"`) {
							lines[i] = strings.Replace(l, `"result":"`+string(victim.Result)+`"`, `"result":"denied"`, 1)
							if victim.Result == agenttrail.ResultDenied {
								lines[i] = strings.Replace(l, `"result":"denied"`, `"result":"success"`, 1)
							}
						}
					}
					return []byte(strings.Join(lines, "\n"))
				})
				r := verify(t, bundle, f.key.VerifierKey())
				wantProblem(t, r, victim.ID, "content altered")
				if len(r.Problems) != 1 {
					t.Errorf("problems = %v, want exactly the edited event", r.Problems)
				}
			})
		})
	}
}

// TestRetentionKeepsRoots deletes the older half of the events: the bundle
// of the rest verifies, and the checkpoint signed before is consistent
// with the one after.
func TestRetentionKeepsRoots(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b, 400)
			old := f.wantOK(t, f.bundle(t, agenttrail.Filter{}))
			if old.Events != 400 {
				t.Fatalf("bundle events = %d, want 400", old.Events)
			}
			if _, err := f.s.DeleteBefore(t.Context(), f.stored[200].Time); err != nil {
				t.Fatal(err)
			}
			storetest.AppendAll(t, f.s, events(3, 10, storetest.Base().Add(48*time.Hour)), 10)
			r := f.wantOK(t, f.bundle(t, agenttrail.Filter{}))
			if r.Events != 210 || r.First != 200 || r.End != 410 {
				t.Fatalf("bundle after retention = %d events, leaves %d..%d, want 210, 200..409", r.Events, r.First, r.End-1)
			}
			p, err := tlog.ProveTree(410, 400, integrity.HashReader(t.Context(), f.s, "acme"))
			if err != nil {
				t.Fatal(err)
			}
			if err := integrity.CheckConsistency(old.Checkpoint.Note, r.Checkpoint.Note, f.key.VerifierKey(), p); err != nil {
				t.Fatalf("CheckConsistency(before retention, after) = %v", err)
			}
		})
	}
}

// TestBundleFiltered exports one actor's events: the other leaves of the
// range are listed as excluded, and a deleted event of that actor is still
// a missing leaf, not an excluded one.
func TestBundleFiltered(t *testing.T) {
	f := newFixture(t, backends(t)[0], 300)
	actor := f.stored[100].ActorID
	r := f.wantOK(t, f.bundle(t, agenttrail.Filter{ActorID: []string{actor}}))
	want := 0
	for _, e := range f.stored {
		if e.ActorID == actor {
			want++
		}
	}
	if r.Events != want || r.Excluded == 0 {
		t.Fatalf("filtered bundle = %d events, %d excluded, want %d events and some excluded", r.Events, r.Excluded, want)
	}
	var victim agenttrail.Event
	for _, e := range f.stored[101:] {
		if e.ActorID == actor {
			victim = e
			break
		}
	}
	f.exec(t, "DELETE FROM events WHERE id = ?", victim.ID)
	wantProblem(t, verify(t, f.bundle(t, agenttrail.Filter{ActorID: []string{actor}}), f.key.VerifierKey()),
		"", fmt.Sprintf("missing leaf %d", *victim.LogIndex))
}

func readEntry(t *testing.T, bundle []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewriteEntry returns bundle with the entry name replaced by edit's result.
func rewriteEntry(t *testing.T, bundle []byte, name string, edit func([]byte) []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, zf := range zr.File {
		b := readEntry(t, bundle, zf.Name)
		if zf.Name == name {
			b = edit(b)
		}
		w, err := zw.Create(zf.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

var (
	_ = sql.ErrNoRows
	_ = filepath.Join
	_ = sqlite.Open
)
