package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
)

// TestOpenUnreachable needs no server: nothing listens on port 1.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/test?connect_timeout=2", postgres.Config{})
	if err == nil {
		s.Close()
		t.Fatal("Open(nothing listening) = nil error, want one")
	}
	if code := agenttrail.ErrorCode(err); code != agenttrail.EUNAVAILABLE {
		t.Errorf("Open(nothing listening) error code = %q (%v), want %q", code, err, agenttrail.EUNAVAILABLE)
	}
}

func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://[::1", postgres.Config{})
	if code := agenttrail.ErrorCode(err); code != agenttrail.EINVALID {
		t.Errorf("Open(bad dsn) error code = %q (%v), want %q", code, err, agenttrail.EINVALID)
	}
}

func TestOpenMissingSchema(t *testing.T) {
	dsn := withSearchPath(t, testDSN(t), "agenttrail_no_such_schema")
	_, err := postgres.Open(context.Background(), dsn, postgres.Config{})
	if code := agenttrail.ErrorCode(err); code != agenttrail.EINVALID {
		t.Errorf("Open(search_path of a missing schema) error code = %q (%v), want %q", code, err, agenttrail.EINVALID)
	}
}

// TestConnectionsKilled ends the store's sessions from outside, as a
// database restart would: the store reports unavailable or recovers, and
// answers again afterwards.
func TestConnectionsKilled(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping() = %v", err)
	}
	schema := queryStrings(t, dsn, "SELECT current_schema()::text")[0]
	n := queryInt(t, testDSN(t), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, schema)
	if n == 0 {
		t.Fatalf("found no session of the store to end")
	}
	_, err := s.Query(ctx, agenttrail.Query{Limit: 1})
	if err != nil && agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE {
		t.Errorf("Query() on a killed connection error code = %q (%v), want %q or success", agenttrail.ErrorCode(err), err, agenttrail.EUNAVAILABLE)
	}
	if _, err := s.Query(ctx, agenttrail.Query{Limit: 1}); err != nil {
		t.Errorf("Query() after reconnecting = %v, want nil", err)
	}
}

// TestOpenWorkMem: the store's connections get a work_mem that holds a
// series' groups, unless the DSN sets one, as a parameter or in options.
func TestOpenWorkMem(t *testing.T) {
	dsn, _ := newSchema(t)
	for _, c := range []struct{ extra, want string }{
		{"", "32MB"},
		{"&work_mem=16MB", "16MB"},
		{"&options=-c%20work_mem%3D8MB", "8MB"},
	} {
		s, err := postgres.Open(context.Background(), dsn+c.extra, postgres.Config{})
		if err != nil {
			t.Fatalf("Open(%q): %v", c.extra, err)
		}
		got, err := postgres.WorkMem(s)
		s.Close()
		if err != nil || got != c.want {
			t.Errorf("Open(dsn%s): work_mem = %q, %v, want %q", c.extra, got, err, c.want)
		}
	}
}
