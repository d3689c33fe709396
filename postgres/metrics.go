package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics registers gauges and counters read from the pool's
// statistics at each scrape (a pool that runs out of connections slows
// every read and the writer alike), and the Appends that started over.
func registerMetrics(reg prometheus.Registerer, pool *pgxpool.Pool, s *Store) error {
	gauge := func(name, help string, v func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "agenttrail_postgres_pool_" + name, Help: help},
			func() float64 { return v(pool.Stat()) })
	}
	counter := func(name, help string, v func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "agenttrail_postgres_pool_" + name, Help: help},
			func() float64 { return v(pool.Stat()) })
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		gauge("max_conns", "Connections the pool may open.", func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
		gauge("conns", "Connections open.", func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
		gauge("acquired_conns", "Connections in use.", func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
		counter("acquires_total", "Connections handed out.", func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
		counter("empty_acquires_total", "Connections handed out after waiting for one: the pool was exhausted.",
			func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
		counter("acquire_seconds_total", "Time spent waiting for connections.",
			func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "agenttrail_postgres_append_restarts_total",
			Help: "Attempts to commit a batch that started over: an id of the batch was stored already, the batch in flight before it failed, or a writer in another process came in between."},
			func() float64 { return float64(s.restarts.Load()) }),
	} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}
