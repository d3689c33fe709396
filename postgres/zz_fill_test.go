package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
)

func TestZZFill(t *testing.T) {
	if os.Getenv("ZZFILL") == "" {
		t.Skip()
	}
	base := testDSN(t)
	exec(t, base, "DROP SCHEMA IF EXISTS perf_pg CASCADE")
	exec(t, base, "CREATE SCHEMA perf_pg")
	s, err := postgres.Open(context.Background(), withSearchPath(t, base, "perf_pg"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	start := now.Add(-30 * 24 * time.Hour)
	t0 := time.Now()
	for i := 0; i < 200; i++ {
		ev := storetest.Events(int64(i), 5000, start, 30*24*time.Hour-time.Minute)
		if _, err := s.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("filled in %v", time.Since(t0))
}
