package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/redact"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/wire"
)

// backend is a store under test and a way to read every text value it
// keeps, straight from the database, bypassing the Store interface.
type backend struct {
	name string
	open func(t testing.TB) (agenttrail.Store, func(t testing.TB) []string)
}

// backends are SQLite always, and PostgreSQL when AGENTTRAIL_TEST_POSTGRES
// names a server (an unreachable one fails the test).
func backends() []backend {
	return []backend{{"sqlite", openSQLite}, {"postgres", openPostgres}}
}

func openSQLite(t testing.TB) (agenttrail.Store, func(t testing.TB) []string) {
	t.Helper()
	return openSQLiteAt(t, filepath.Join(t.TempDir(), "trail.db"))
}

func openSQLiteAt(t testing.TB, path string) (agenttrail.Store, func(t testing.TB) []string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, sqlite.Config{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	return st, func(t testing.TB) []string {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var tables []string
		rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, n)
		}
		rows.Close()
		var out []string
		for _, table := range tables {
			out = append(out, scanAll(t, db, `SELECT * FROM "`+table+`"`)...)
		}
		if len(out) == 0 {
			t.Fatalf("read nothing from %s", path)
		}
		return out
	}
}

// scanAll returns every text and blob value of a query's rows.
func scanAll(t testing.TB, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			switch v := v.(type) {
			case string:
				out = append(out, v)
			case []byte:
				out = append(out, string(v))
			}
		}
	}
	return out
}

func openPostgres(t testing.TB) (agenttrail.Store, func(t testing.TB) []string) {
	t.Helper()
	dsn, schema := pgSchema(t)
	return openPostgresAt(t, dsn, schema)
}

// pgSchema creates a schema of its own for a test, dropped when it ends,
// and returns a DSN that uses it.
func pgSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	base := os.Getenv("AGENTTRAIL_TEST_POSTGRES")
	if base == "" {
		t.Skip("PostgreSQL tests need a server: run with AGENTTRAIL_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema = "agenttrail_sec_" + hex.EncodeToString(b)
	pgExec(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { pgExec(t, base, "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("AGENTTRAIL_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}

func openPostgresAt(t testing.TB, dsn, schema string) (agenttrail.Store, func(t testing.TB) []string) {
	t.Helper()
	st, err := postgres.Open(context.Background(), dsn, postgres.Config{})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	return st, func(t testing.TB) []string {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
			WHERE table_schema = $1 AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'character')`, schema)
		if err != nil {
			t.Fatal(err)
		}
		var cols [][3]string
		for rows.Next() {
			var tbl, col, typ string
			if err := rows.Scan(&tbl, &col, &typ); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, [3]string{tbl, col, typ})
		}
		rows.Close()
		var out []string
		for _, c := range cols {
			// bytea as text is hex; its escape form shows ASCII as is.
			expr := pgx.Identifier{c[1]}.Sanitize() + "::text"
			if c[2] == "bytea" {
				expr = "encode(" + pgx.Identifier{c[1]}.Sanitize() + ", 'escape')"
			}
			q := fmt.Sprintf(`SELECT %s FROM %s.%s WHERE %s IS NOT NULL`,
				expr, pgx.Identifier{schema}.Sanitize(), pgx.Identifier{c[0]}.Sanitize(), pgx.Identifier{c[1]}.Sanitize())
			rows, err := conn.Query(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
			rows.Close()
		}
		if len(out) == 0 {
			t.Fatalf("read nothing from schema %s", schema)
		}
		return out
	}
}

func pgExec(t testing.TB, dsn, stmt string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to AGENTTRAIL_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// secEnv is a server as `agenttrail serve` configures it: tokens from a
// token file, audit, redaction, a rate limit; in front of a real pipeline
// and store.
type secEnv struct {
	*env
	tokens map[string]string // name -> token
	file   *TokenFile
	dump   func(t testing.TB) []string
}

type secOptions struct {
	backend backend
	rate    RateLimit
	anon    RateLimit // Config.AnonymousRateLimit
	maxBody int64     // Config.MaxBodyBytes
}

// secTokens are the tokens every secEnv has, by name.
var secTokens = []struct {
	name string
	role Role
	org  string
}{
	{"root", RoleAdmin, AllOrgs},
	{"acme-read", RoleRead, "acme"},
	{"acme-ingest", RoleIngest, "acme"},
	{"acme-admin", RoleAdmin, "acme"},
	{"globex-read", RoleRead, "globex"},
	{"globex-ingest", RoleIngest, "globex"},
}

func newSecEnv(t testing.TB, o secOptions) *secEnv {
	t.Helper()
	if o.backend.open == nil {
		o.backend = backend{"sqlite", openSQLite}
	}
	store, dump := o.backend.open(t)
	file := NewTokenFile(filepath.Join(t.TempDir(), "tokens.json"))
	se := &secEnv{tokens: map[string]string{}, file: file, dump: dump}
	for _, tk := range secTokens {
		token, _, err := file.Create(tk.name, tk.role, tk.org, "tester", time.Now())
		if err != nil {
			t.Fatalf("Create(%s): %v", tk.name, err)
		}
		se.tokens[tk.name] = token
	}
	logger := slog.New(slog.DiscardHandler)
	auth, err := NewTokenAuth(file, logger)
	if err != nil {
		t.Fatalf("NewTokenAuth: %v", err)
	}
	redactor, err := redact.New(TokenPattern)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := &clock{now: time.Now()}
	p := ingest.New(store, ingest.Config{Redactor: redactor, Now: c.Now, Logger: logger, Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	var once sync.Once
	stopRun := func() {
		once.Do(func() {
			cancel()
			if err := <-ran; err != nil {
				t.Errorf("pipeline Run = %v", err)
			}
		})
	}
	key, err := integrity.LoadKey(filepath.Join(t.TempDir(), "signing.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	// The integrity routes, on every store that keeps a tree (wrappers
	// that hold reads back do not).
	var integ *Integrity
	if log, ok := store.(integrity.Log); ok {
		integ = &Integrity{Log: log, Signer: &integrity.Signer{Log: log, Key: key}, Key: key.VerifierKey()}
	}
	srv := New(Config{
		Addr: "127.0.0.1:0", Store: store, Ingest: p, Logger: logger, Registry: reg, Now: c.Now,
		Auth: auth, Audit: true, RateLimit: o.rate, AnonymousRateLimit: o.anon, MaxBodyBytes: o.maxBody,
		Integrity: integ,
	})
	stop := serveTest(t, srv)
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- auth.Run(watchCtx) }()
	t.Cleanup(func() {
		stopWatch()
		<-watched
	})
	transport := &http.Transport{MaxIdleConnsPerHost: 16}
	se.env = &env{
		srv: srv, url: srv.URL(), store: store, pipeline: p, reg: reg, clock: c,
		client: &http.Client{Transport: transport, Timeout: time.Minute}, stopRun: stopRun, stop: stop,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		transport.CloseIdleConnections()
		stopRun()
		_ = store.Close()
	})
	return se
}

// as returns the Authorization header of the named token.
func (se *secEnv) as(name string) http.Header {
	return http.Header{"Authorization": {"Bearer " + se.tokens[name]}}
}

// ingestAs posts NDJSON events with the named token and returns the answer.
func (se *secEnv) ingestAs(t *testing.T, name string, events ...string) wire.IngestResult {
	t.Helper()
	return decodeIngest(t, "POST as "+name, se.do(t, http.MethodPost, "/v1/events", se.as(name), []byte(strings.Join(events, "\n"))))
}

// eventJSON is a valid event with the given fields set over a default one.
func eventJSON(fields map[string]any) string {
	ev := map[string]any{
		"actor_type": "agent", "actor_id": "agent-1", "source": "shell",
		"action": "shell_exec", "result": "success", "time": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano),
	}
	for k, v := range fields {
		ev[k] = v
	}
	b, _ := json.Marshal(ev)
	return string(b)
}
