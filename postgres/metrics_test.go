package postgres_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
)

// TestPoolMetrics opens a store with a registry and reads the pool's
// metrics after a query: its connections are counted.
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
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	for _, name := range []string{"agenttrail_postgres_pool_max_conns", "agenttrail_postgres_pool_conns", "agenttrail_postgres_pool_acquires_total"} {
		if got[name] < 1 {
			t.Errorf("%s = %v, want at least 1 (metrics: %v)", name, got[name], got)
		}
	}
}
