package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/jackc/pgx/v5"
)

// dsnEnv names the variable that points the tests at a PostgreSQL server.
const dsnEnv = "AGENTTRAIL_TEST_POSTGRES"

// testDSN returns the server the tests use. Without one configured the
// tests skip; with one configured, an unreachable server fails them.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skip("PostgreSQL tests need a server: run with " + dsnEnv + "=postgres://postgres@127.0.0.1:5432/test")
	}
	return dsn
}

// newSchema creates a schema of its own for one test, drops it when the
// test ends, and returns a DSN whose search_path selects it.
func newSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	base := testDSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema = "agenttrail_test_" + hex.EncodeToString(b)
	exec(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA "+schema+" CASCADE") })
	return withSearchPath(t, base, schema), schema
}

// withSearchPath returns dsn with its search_path set to schema, and its
// application_name too, so a test can find its store's sessions.
func withSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", dsnEnv, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		q.Set("application_name", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema + " application_name=" + schema
}

// exec runs one statement on its own connection.
func exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test database (%s): %v", dsnEnv, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// openStore opens a store in a fresh schema and closes it when t ends.
func openStore(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	dsn, _ := newSchema(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Config{})
	if err != nil {
		t.Fatalf("Open() error: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

func TestConformance(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(t *testing.T) agenttrail.Store {
		s, _ := openStore(t)
		return s
	})
}
