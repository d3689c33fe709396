package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
)

// TestPoolMetrics opens a store with a registry and reads the pool's
// metrics after a query, and the count of restarted Appends after one
// sent a stored event again: its connections and the restart are counted.
func TestPoolMetrics(t *testing.T) {
	dsn, _ := newSchema(t)
	reg := prometheus.NewRegistry()
	s, err := postgres.Open(context.Background(), dsn, postgres.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Query(t.Context(), agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	events := storetest.AppendAll(t, s, storetest.Events(8, 2, storetest.Base(), time.Hour), 2)
	if res, err := s.Append(t.Context(), events[1:]); err != nil || res.Duplicates != 1 {
		t.Fatalf("Append(a stored event) = %+v, %v, want 1 duplicate", res, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	for _, name := range []string{"agenttrail_postgres_pool_max_conns", "agenttrail_postgres_pool_conns", "agenttrail_postgres_pool_acquires_total", "agenttrail_postgres_append_restarts_total"} {
		if got[name] < 1 {
			t.Errorf("%s = %v, want at least 1 (metrics: %v)", name, got[name], got)
		}
	}
}
