// Package sqlite is the embedded agenttrail.Store: one SQLite file in WAL
// mode, written by a single connection and read through a pool, with hourly
// rollups kept in the same transactions as the events. It uses the pure-Go
// modernc.org/sqlite driver, so the binary needs no C toolchain.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ agenttrail.Store = (*Store)(nil)

// Store is an agenttrail.Store on one SQLite file. All methods are safe for
// concurrent use: Append and DeleteBefore are serialized on the one writer
// connection, reads run on a pool of read-only connections and see only
// committed transactions (WAL snapshots).
type Store struct {
	path   string
	logger *slog.Logger

	// mu serializes writers: seq must equal commit order, and the writer
	// connection's prepared statements and buffers below are not shared.
	mu    sync.Mutex
	w     *sql.DB // exactly one connection
	stmts map[string]*sql.Stmt
	// wr is the connection Append writes through, beside w: see rawConn.
	wr *writer
	// ckpt checkpoints the WAL after wr's commits.
	ckpt *walCheckpointer

	r *sql.DB // read-only pool

	// daysUntil mirrors meta.days_until, which rollup_days holds every day
	// before; each write transaction reads it afresh. Owned by s.mu.
	daysUntil int64

	// deleteChunk bounds the events one DeleteBefore transaction removes.
	deleteChunk int

	// now is the clock that decides which days are over.
	now func() time.Time

	// ledger holds the budget reservations (see budget.go).
	ledger ledger

	// noTree leaves the integrity tree out of Append: only
	// BenchmarkAppendTree sets it, to measure what the tree costs.
	noTree bool
}

// Durability: synchronous=FULL fsyncs the WAL at every commit, so an
// acknowledged batch survives a process kill and a power loss; NORMAL in
// WAL mode survives a process kill only (the OS still holds the writes).
// Commits are large batches (group commit), so the fsync is paid once per
// batch, not per event, and FULL is the default. BenchmarkAppend measures
// both; TestKill checks the process-kill case.
const defaultSynchronous = "FULL"

// Connection settings. The writer gets the larger page cache: it walks the
// right edge of every index on each batch. Readers are query_only, so a bug
// cannot write through them. 16,000 KiB of cache per reader keeps the
// store's memory bounded (the server's RSS target is 256 MiB).
const (
	writerPragmas = "_pragma=busy_timeout(10000)&_pragma=cache_size(-32000)&_pragma=temp_store(MEMORY)&_txlock=immediate"
	readerPragmas = "_pragma=busy_timeout(10000)&_pragma=cache_size(-16000)&_pragma=temp_store(MEMORY)&_pragma=query_only(1)"
)

// Config configures a Store. The zero value is usable.
type Config struct {
	// Logger logs opening and maintenance; nil discards.
	Logger *slog.Logger
	// Registerer registers the metrics of the store's two connection pools
	// (database/sql's go_sql_*, db_name agenttrail_sqlite_writer and
	// agenttrail_sqlite_reader); nil leaves them unregistered.
	Registerer prometheus.Registerer
	// MaxHeldReservations bounds the budget reservations one org holds at
	// once; 0 is agenttrail.MaxHeldReservations.
	MaxHeldReservations int
}

// Open opens (creating if needed) the store in the SQLite file at path and
// migrates its schema to the current version. Writes of several processes
// on one file would serialize on SQLite's lock and stay correct, but one
// process per file is the intended use.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	s, err := open(ctx, path, cfg.Logger, defaultSynchronous)
	if err != nil {
		return nil, err
	}
	s.ledger.max = cfg.MaxHeldReservations
	if cfg.Registerer != nil {
		if err := errors.Join(
			cfg.Registerer.Register(collectors.NewDBStatsCollector(s.w, "agenttrail_sqlite_writer")),
			cfg.Registerer.Register(collectors.NewDBStatsCollector(s.r, "agenttrail_sqlite_reader")),
		); err != nil {
			s.Close()
			return nil, fmt.Errorf("open %s: metrics: %w", path, err)
		}
	}
	return s, nil
}

func open(ctx context.Context, path string, logger *slog.Logger, synchronous string) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, agenttrail.Invalid("path", "is required")
	}
	if err := privateFiles(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	u := url.URL{Scheme: "file", Opaque: url.PathEscape(path)}
	dsn := u.String() + "?"
	s := &Store{path: path, logger: logger, stmts: map[string]*sql.Stmt{}, deleteChunk: 10000, now: time.Now}
	var err error
	if s.w, err = sql.Open("sqlite", dsn+writerPragmas+"&_pragma=synchronous("+synchronous+")"); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := initFile(ctx, s.w); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, s.w); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if s.wr, err = openWriter(path, synchronous); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open %s: %w", path, formatError("open writer", err))
	}
	if s.ckpt, err = startWALCheckpointer(path, logger); err != nil {
		s.wr.close()
		s.w.Close()
		return nil, fmt.Errorf("open %s: %w", path, formatError("open WAL checkpointer", err))
	}
	if err := s.backfill(ctx); err != nil {
		s.ckpt.close()
		s.wr.close()
		s.w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if s.r, err = sql.Open("sqlite", dsn+readerPragmas); err != nil {
		s.ckpt.close()
		s.wr.close()
		s.w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	logger.Info("sqlite store opened", "path", path, "synchronous", synchronous)
	return s, nil
}

// Ping reports whether the database file answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return formatError("ping", err)
	}
	return nil
}

// Close closes the database. Calls in progress finish first; no method may
// be called after Close.
func (s *Store) Close() error {
	s.ledger.stopRefreshing()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	if s.ckpt != nil {
		s.ckpt.close()
		s.ckpt = nil
	}
	if s.wr != nil {
		s.wr.close()
		s.wr = nil
	}
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	// Closing the last connection checkpoints the WAL into the main file.
	errs = append(errs, s.w.Close())
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("close %s: %w", s.path, err)
		}
	}
	return nil
}

// pageSize is the page size of new files. Larger pages than SQLite's 4 KiB
// default mean fewer WAL frames, write calls and B-tree splits per batch;
// measured in bench_test.go.
const pageSize = 16384

// initFile sets the page size, which only a new, empty file accepts, then
// WAL mode, which the file remembers.
func initFile(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		return formatError("set page size", err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return formatError("set WAL mode", err)
	}
	if mode != "wal" {
		return agenttrail.Errorf(agenttrail.EINTERNAL, "sqlite: journal mode is %q, want wal", mode)
	}
	return nil
}

// prepare prepares the statements the writer runs once per row, before
// any transaction holds the writer's one connection (preparing through the
// pool then would wait for that connection forever).
func (s *Store) prepare(ctx context.Context) error {
	queries := []string{upsertSQL, upsertDaySQL}
	for _, q := range queries {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return formatError("prepare", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// stmt returns query as a statement of tx: the writer's prepared statement
// when there is one, or a statement prepared in tx. It must be called with
// s.mu held.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, query)
}

// privateFiles creates the database file at path with mode 0600 when it
// does not exist, and narrows an existing one, with its WAL, shared-memory
// and rollback journal files, to 0600: audit data is for its owner only.
// SQLite creates those files with the database file's mode, so creating
// that one first is what keeps them private, whatever the umask.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, 0o600); err != nil {
			return err
		}
	}
	return nil
}
