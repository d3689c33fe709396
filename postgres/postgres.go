// Package postgres is the production agenttrail.Store: PostgreSQL through
// pgx, events in one partition per UTC day, batches written with COPY,
// deduplication through an unpartitioned table of ids, and hourly and daily
// rollups kept in the same transaction as the events they count.
//
// The store lives in the connection's current schema (the first schema of
// its search_path that exists), so several stores, or test runs, can share
// one database. Times are kept to
// the microsecond, PostgreSQL's precision.
//
// One process writes to a schema: two Appends of a Store overlap (one
// COPYs while the other commits), and DeleteBefore excludes them. Commits
// move the seq counter under its row lock, only from the value they
// started from, so seq order stays commit order if a second process writes
// too, and a stale partition cache recovers, but concurrent writers in
// several processes are not a supported deployment: they make each other
// start over.
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var _ agenttrail.Store = (*Store)(nil)

// Store is an agenttrail.Store on PostgreSQL. It is safe for concurrent use;
// up to two Appends run at once, and DeleteBefore runs alone. The zero value is not
// usable: create one with Open.
type Store struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	now    func() time.Time

	// appends holds a slot per Append running (appendSlots), and all of
	// them for DeleteBefore and the backfill, which exclude Appends;
	// exclusive is held by those while they take the slots. Channels
	// rather than mutexes so that waiting honours ctx.
	appends   chan struct{}
	exclusive chan struct{}

	// mu guards tail, the last Append that took its seqs and has not
	// ended (see Append), and ended, how many Appends that took their
	// seqs have ended.
	mu    sync.Mutex
	tail  *flight
	ended uint64

	// days caches the day partitions known to exist (UTC midnight → true),
	// so Append issues DDL only for days it has not seen; partMu guards
	// it.
	partMu sync.Mutex
	days   map[time.Time]bool

	// reserving bounds the Reserve calls in progress (see Open).
	reserving chan struct{}
	// prunedAt is when Reserve last removed the reservations that no
	// longer count (unix ns).
	prunedAt atomic.Int64

	// copies holds COPY buffers (*copyRows) for the next batches.
	copies sync.Pool

	// probing is how many more Appends look their ids up before COPYing
	// them (see appendTx); set when one found an id stored. restarts
	// counts the attempts of Appends that started over.
	probing  atomic.Int32
	restarts atomic.Int64

	// noTree leaves the integrity tree out of Append: only
	// BenchmarkAppendTree sets it, to measure what the tree costs.
	noTree bool
}

// defaultWorkMem is the work_mem of the store's connections where nothing
// else set one (see Open).
const defaultWorkMem = "32MB"

// Config configures a Store. The zero value is usable.
type Config struct {
	// Logger logs migrations, partitions and retention; nil discards.
	Logger *slog.Logger
	// Registerer registers the metrics of the connection pool
	// (agenttrail_postgres_pool_*); nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Open connects to the PostgreSQL database of dsn (a URL or key/value DSN
// accepted by pgx), applies pending migrations to its current schema under
// an advisory lock, and creates the day partitions from yesterday to two
// days ahead. Pool settings such as pool_max_conns may be given in dsn.
// Sessions use the UTC time zone whatever the DSN says, because buckets are
// UTC, custom plans, a parallel_setup_cost that keeps small reads serial,
// and a work_mem that holds a series' groups.
func Open(ctx context.Context, dsn string, cfg Config) (*Store, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, agenttrail.Errorf(agenttrail.EINVALID, "postgres: parse dsn: %v", err)
	}
	pcfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	// Plan every statement for its parameters: a generic plan cannot prune
	// day partitions when planning, and guesses at the selectivity of time
	// ranges, which made some reads several times slower.
	pcfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	// Starting parallel workers costs milliseconds, more than most reads
	// take in all; only scans large enough to repay that go parallel.
	pcfg.ConnConfig.RuntimeParams["parallel_setup_cost"] = "10000"
	// A series by a dimension groups tens of thousands of rollup rows
	// into thousands of buckets, each with seven sums; at the default
	// 4MB the hash table spilled to disk and the read took a third
	// longer. Only where nothing set work_mem: not the server's
	// configuration, the role or database, nor the DSN (as a parameter
	// or in options, or PGOPTIONS).
	pcfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SELECT set_config('work_mem', '`+defaultWorkMem+`', false)
			FROM pg_settings WHERE name = 'work_mem' AND source = 'default'`)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, formatError("postgres: connect", err)
	}
	s := &Store{
		pool:      pool,
		logger:    logger,
		now:       time.Now,
		appends:   make(chan struct{}, appendSlots),
		exclusive: make(chan struct{}, 1),
		days:      map[time.Time]bool{},
		copies:    sync.Pool{New: func() any { return new(copyRows) }},
		// Each Reserve holds a connection for its transaction and takes
		// a second for the rollup read; bounding them to half the pool
		// leaves the rollup reads a connection whatever the load.
		reserving: make(chan struct{}, max(1, pcfg.MaxConns/2)),
	}
	if err := s.open(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if cfg.Registerer != nil {
		if err := registerMetrics(cfg.Registerer, pool, s); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: metrics: %w", err)
		}
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	var schema *string
	if err := s.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return formatError("postgres: connect", err)
	}
	if schema == nil {
		return agenttrail.Errorf(agenttrail.EINVALID, "postgres: no schema of the search_path exists; create it first")
	}
	if err := migrate(ctx, s.pool, s.logger); err != nil {
		return err
	}
	if err := s.loadPartitions(ctx); err != nil {
		return err
	}
	if err := s.backfill(ctx); err != nil {
		return err
	}
	today := day(s.now())
	return s.ensurePartitions(ctx, []time.Time{today.AddDate(0, 0, -1), today, today.AddDate(0, 0, 1), today.AddDate(0, 0, 2)})
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return formatError("postgres: ping", err)
	}
	return nil
}

// Close closes every connection of the pool, waiting for those in use to be
// released. No method may be called after.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// appendSlots is how many Appends run at once: two, so that one COPYs
// while the one before it commits. More would only wait for those.
const appendSlots = 2

// lockAppend takes an Append's slot, or fails when ctx ends first.
func (s *Store) lockAppend(ctx context.Context) error {
	select {
	case s.appends <- struct{}{}:
		return nil
	case <-ctx.Done():
		return agenttrail.ContextError("postgres: wait for writer", ctx.Err())
	}
}

func (s *Store) unlockAppend() { <-s.appends }

// lockWriter takes every Append's slot, so no Append runs until
// unlockWriter, or fails when ctx ends first.
func (s *Store) lockWriter(ctx context.Context) error {
	select {
	case s.exclusive <- struct{}{}:
	case <-ctx.Done():
		return agenttrail.ContextError("postgres: wait for writer", ctx.Err())
	}
	for i := range appendSlots {
		if err := s.lockAppend(ctx); err != nil {
			for range i {
				s.unlockAppend()
			}
			<-s.exclusive
			return err
		}
	}
	return nil
}

func (s *Store) unlockWriter() {
	for range appendSlots {
		s.unlockAppend()
	}
	<-s.exclusive
}

// day returns the UTC midnight starting t's day.
func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
