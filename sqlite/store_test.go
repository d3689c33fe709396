package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, Config{})
	if err != nil {
		t.Fatalf("Open(%s) error: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func count(t *testing.T, s *Store, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.r.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trail.db")
	s := openAt(t, path)
	first := storetest.AppendAll(t, s, storetest.Events(1, 100, storetest.Base(), time.Hour), 100)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error: %v", err)
	}
	s = openAt(t, path)
	if v, want := count(t, s, "PRAGMA user_version"), int64(len(mustMigrations(t))); v != want {
		t.Errorf("user_version = %d, want %d", v, want)
	}
	if mode := fmt.Sprint(queryString(t, s, "PRAGMA journal_mode")); mode != "wal" {
		t.Errorf("journal_mode = %s, want wal", mode)
	}
	second := storetest.AppendAll(t, s, storetest.Events(2, 10, storetest.Base(), time.Hour), 10)
	if second[0].Seq != first[len(first)-1].Seq+1 {
		t.Errorf("first seq after reopening = %d, want %d", second[0].Seq, first[len(first)-1].Seq+1)
	}
	res, err := s.Append(t.Context(), storetest.Events(1, 100, storetest.Base(), time.Hour))
	if err != nil || res.Duplicates != 100 {
		t.Errorf("Append(events stored before reopening) = %+v, %v, want 100 duplicates", res, err)
	}
}

func queryString(t *testing.T, s *Store, query string) string {
	t.Helper()
	var v string
	if err := s.r.QueryRowContext(t.Context(), query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func mustMigrations(t *testing.T) []migration {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trail.db")
	s := openAt(t, path)
	if _, err := s.w.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(t.Context(), path, Config{}); err == nil {
		s.Close()
		t.Fatalf("Open(file of schema 999) = nil error, want a refusal")
	}
}

func TestErrors(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "trail.db"))
	ctx := t.Context()
	many := make([]string, agenttrail.MaxFilterValues+1)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	week := agenttrail.Filter{Since: storetest.Base(), Until: storetest.Base().Add(7 * 24 * time.Hour)}
	tests := []struct {
		name  string
		call  func() error
		code  string
		field string
	}{
		{"Query limit 0", func() error { _, err := s.Query(ctx, agenttrail.Query{Limit: 0}); return err }, agenttrail.EINVALID, "limit"},
		{"Query bad sort", func() error { _, err := s.Query(ctx, agenttrail.Query{Limit: 1, Sort: "up"}); return err }, agenttrail.EINVALID, "sort"},
		{"Query too many values", func() error {
			_, err := s.Query(ctx, agenttrail.Query{Limit: 1, Filter: agenttrail.Filter{ActorID: many}})
			return err
		}, agenttrail.EINVALID, "actor_id"},
		{"Query long q", func() error {
			_, err := s.Query(ctx, agenttrail.Query{Limit: 1, Filter: agenttrail.Filter{Q: strings.Repeat("x", agenttrail.MaxQBytes+1)}})
			return err
		}, agenttrail.EINVALID, "q"},
		{"Aggregate bad by", func() error { _, err := s.Aggregate(ctx, agenttrail.Filter{}, "color"); return err }, agenttrail.EINVALID, "by"},
		{"Series bad interval", func() error { _, err := s.Series(ctx, week, "minute", ""); return err }, agenttrail.EINVALID, "interval"},
		{"Series no range", func() error { _, err := s.Series(ctx, agenttrail.Filter{}, agenttrail.Hour, ""); return err }, agenttrail.EINVALID, "since"},
		{"Series too many buckets", func() error {
			f := agenttrail.Filter{Since: storetest.Base(), Until: storetest.Base().Add(2 * agenttrail.MaxBuckets * time.Hour)}
			_, err := s.Series(ctx, f, agenttrail.Hour, "")
			return err
		}, agenttrail.EINVALID, "since"},
		{"HeartbeatGaps negative interval", func() error { _, err := s.HeartbeatGaps(ctx, week, -time.Second); return err }, agenttrail.EINVALID, "interval"},
		{"Get missing", func() error { _, err := s.Get(ctx, "nope", agenttrail.Filter{}); return err }, agenttrail.ENOTFOUND, ""},
	}
	for _, tc := range tests {
		err := tc.call()
		if code, field := agenttrail.ErrorCode(err), agenttrail.ErrorField(err); code != tc.code || field != tc.field {
			t.Errorf("%s: error %v has code %q field %q, want %q %q", tc.name, err, code, field, tc.code, tc.field)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	batch := storetest.Events(3, 10, storetest.Base(), time.Hour)
	if _, err := s.Append(cancelled, batch); !errors.Is(err, context.Canceled) || agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE {
		t.Errorf("Append(cancelled context) error = %v (code %q), want context.Canceled, %q", err, agenttrail.ErrorCode(err), agenttrail.EUNAVAILABLE)
	}
	for i := range batch {
		if batch[i].Seq != 0 {
			t.Fatalf("Append(cancelled context) left seq %d on event %d", batch[i].Seq, i)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM events"); n != 0 {
		t.Errorf("Append(cancelled context) stored %d events, want 0", n)
	}

	s.Close()
	if _, err := s.Append(ctx, batch); agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE {
		t.Errorf("Append(closed store) error = %v, want code %q", err, agenttrail.EUNAVAILABLE)
	}
}

// TestDeleteChunks deletes in chunks far smaller than the data, so every
// chunk boundary falls inside an hour, and checks rollups stay exact.
func TestDeleteChunks(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "trail.db"))
	s.deleteChunk = 97
	stored := storetest.AppendAll(t, s, storetest.Events(4, 1500, storetest.Base(), 10*time.Hour), 500)
	cut := storetest.Base().Add(6*time.Hour + 7*time.Minute)
	var kept []agenttrail.Event
	for _, e := range stored {
		if !e.Time.Before(cut) {
			kept = append(kept, e)
		}
	}
	n, err := s.DeleteBefore(t.Context(), cut)
	if want := int64(len(stored) - len(kept)); err != nil || n != want {
		t.Fatalf("DeleteBefore = %d, %v, want %d", n, err, want)
	}
	for _, by := range []agenttrail.Dimension{agenttrail.DimSource, agenttrail.DimModel} {
		got, err := s.Aggregate(t.Context(), agenttrail.Filter{}, by)
		if err != nil {
			t.Fatal(err)
		}
		want := storetest.Aggregate(kept, agenttrail.Filter{}, by)
		if fmt.Sprint(round(got)) != fmt.Sprint(round(want)) {
			t.Errorf("Aggregate(by %s) after chunked delete = %v, want %v", by, got, want)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM rollups WHERE count <= 0"); n != 0 {
		t.Errorf("%d rollup rows with count <= 0 remain", n)
	}
	if n := count(t, s, "SELECT count(*) FROM rollups WHERE hour < ?", cut.Truncate(time.Hour).UnixNano()); n != 0 {
		t.Errorf("%d rollup rows remain for deleted hours", n)
	}
}

// TestPlans guards the indexes: the common pages must not scan the table.
func TestPlans(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "trail.db"))
	storetest.AppendAll(t, s, storetest.Events(5, 200, storetest.Base(), time.Hour), 200)
	day := storetest.Base().Add(-24 * time.Hour)
	tests := []struct {
		name  string
		query agenttrail.Query
		index string
	}{
		{"newest", agenttrail.Query{Limit: 50}, "events_time"},
		{"one agent, 24h", agenttrail.Query{Limit: 200, Filter: agenttrail.Filter{Org: []string{"acme"}, ActorID: []string{"agent-03"}, Since: day}}, "events_time"},
		{"source and result", agenttrail.Query{Limit: 200, Filter: agenttrail.Filter{Source: []string{"shell"}, Result: []string{"failure"}}}, "events_time"},
		{"seq feed", agenttrail.Query{Limit: 200, Sort: agenttrail.SortSeq, After: &agenttrail.Position{Seq: 100}}, "INTEGER PRIMARY KEY"},
		{"one trace in order", agenttrail.Query{Limit: 50, Sort: agenttrail.SortTimeAsc, Filter: agenttrail.Filter{
			Org: []string{"acme"}, TraceID: []string{"ac300000000000000000000000000001"}}}, "events_trace"},
		{"one trace, next page", agenttrail.Query{Limit: 50, Filter: agenttrail.Filter{TraceID: []string{"ac300000000000000000000000000001"}},
			After: &agenttrail.Position{Time: storetest.Base(), Seq: 7}}, "events_trace"},
		{"one session, 24h", agenttrail.Query{Limit: 50, Sort: agenttrail.SortTimeAsc, Filter: agenttrail.Filter{
			SessionID: []string{"acme task 1"}, Since: day}}, "events_session"},
	}
	for _, tc := range tests {
		query, args, err := pageSQL(&tc.query)
		if err != nil {
			t.Fatal(err)
		}
		plan := explain(t, s, query, args...)
		// Sorting the ties of one time by seq ("LAST TERM") is fine; sorting
		// all matches is not.
		if !strings.Contains(plan, tc.index) || strings.Contains(plan, "TEMP B-TREE FOR ORDER BY") {
			t.Errorf("plan of %s = %q, want it to use %s without sorting every match", tc.name, plan, tc.index)
		}
	}
	// Several tasks at once are several ranges of the index, whose events
	// (few: those of a handful of tasks) are then sorted.
	several := agenttrail.Query{Limit: 50, Filter: agenttrail.Filter{SessionID: []string{"acme task 1", "acme task 2"}, TraceID: []string{"ac300000000000000000000000000001", "ac300000000000000000000000000002"}}}
	if query, args, err := pageSQL(&several); err != nil || !strings.Contains(explain(t, s, query, args...), "USING INDEX events_session") &&
		!strings.Contains(explain(t, s, query, args...), "USING INDEX events_trace") {
		t.Errorf("plan of two sessions and traces = %q (%v), want it to use the trace or session index", explain(t, s, query, args...), err)
	}
	if plan := explain(t, s, "SELECT seq FROM events WHERE id = ? ORDER BY seq LIMIT 1", "x"); !strings.Contains(plan, "events_id_org") {
		t.Errorf("plan of Get = %q, want it to use events_id_org", plan)
	}
}

func explain(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	return strings.Join(out, "; ")
}

// TestKill appends in a child process, kills it with SIGKILL once Append
// has returned, and checks that every acknowledged event survived.
func TestKill(t *testing.T) {
	if path := os.Getenv("AGENTTRAIL_SQLITE_KILL_CHILD"); path != "" {
		s, err := Open(context.Background(), path, Config{})
		if err != nil {
			fmt.Println("error", err)
			return
		}
		for i := 0; i < 5; i++ {
			if _, err := s.Append(context.Background(), storetest.Events(int64(i), 1000, storetest.Base(), 24*time.Hour)); err != nil {
				fmt.Println("error", err)
				return
			}
		}
		fmt.Println("acknowledged")
		time.Sleep(time.Minute) // killed here, before any Close
		return
	}
	path := filepath.Join(t.TempDir(), "trail.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill$")
	cmd.Env = append(os.Environ(), "AGENTTRAIL_SQLITE_KILL_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if strings.TrimSpace(line) != "acknowledged" {
		t.Fatalf("child said %q, want acknowledged", line)
	}
	s := openAt(t, path)
	if n := count(t, s, "SELECT count(*) FROM events"); n != 5000 {
		t.Errorf("after SIGKILL: %d events, want the 5000 acknowledged", n)
	}
	if n := count(t, s, "SELECT sum(count) FROM rollups WHERE dim = ?", dimTotal); n != 5000 {
		t.Errorf("after SIGKILL: rollups count %d events, want 5000", n)
	}
}

// TestMigrateUpgrade migrates a file that stopped at an older version and
// checks the rows survive.
func TestMigrateUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trail.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms := mustMigrations(t)
	for _, m := range ms[:3] {
		if err := apply(t.Context(), db, m); err != nil {
			t.Fatalf("migration %s: %v", m.name, err)
		}
	}
	if _, err := db.Exec(`INSERT INTO rollups VALUES (1, 0, 'o', 'p', 'shell', 5, 1, 2, 3, 4, 5, 6)`); err != nil {
		t.Fatal(err)
	}
	if err := migrate(t.Context(), db); err != nil {
		t.Fatalf("migrate() error: %v", err)
	}
	var v, n int
	db.QueryRow("PRAGMA user_version").Scan(&v)
	db.QueryRow("SELECT count FROM rollups WHERE dim = 1 AND key = 'shell' AND org = 'o'").Scan(&n)
	if v != len(ms) || n != 5 {
		t.Errorf("after upgrade: user_version %d, rollup count %d; want %d, 5", v, n, len(ms))
	}
}

// TestWriterDurability: the connection Append writes through fsyncs the
// WAL at every commit (synchronous=FULL, 2), on a WAL file, with the
// busy timeout the other connections have.
func TestWriterDurability(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "trail.db"))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range []struct {
		pragma string
		want   int64
	}{{"synchronous", 2}, {"busy_timeout", 10000}} {
		st, err := s.wr.c.prepare("PRAGMA " + c.pragma)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := st.next()
		if err != nil || !ok {
			t.Fatalf("PRAGMA %s: %v %v", c.pragma, ok, err)
		}
		if got := st.colInt64(0); got != c.want {
			t.Errorf("writer's %s = %d, want %d", c.pragma, got, c.want)
		}
		st.reset()
		st.close()
	}
	var mode string
	if err := s.r.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
}
