package postgres

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Shared is the state every node of a cluster shares (table shared_state):
// named documents, each with a version that grows with every change. A
// Store has one (Store.Shared); a node without a store (an ingest node)
// opens one of its own with OpenShared. Safe for concurrent use.
type Shared struct {
	pool *pgxpool.Pool
	own  bool // Close closes pool
}

// Shared returns the store's shared state, on its connection pool.
func (s *Store) Shared() *Shared { return &Shared{pool: s.pool} }

// sharedMaxConns bounds the connections of a Shared of its own: it reads a
// version a few times a second and a document when it changed.
const sharedMaxConns = 2

// OpenShared connects to the store at dsn for its shared state alone,
// applying the store's migrations when a node with the store has not yet.
func OpenShared(ctx context.Context, dsn string, logger *slog.Logger) (*Shared, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, formatError("postgres: parse dsn", err)
	}
	pcfg.MaxConns = sharedMaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, formatError("postgres: connect", err)
	}
	if err := migrate(ctx, pool, logger); err != nil {
		pool.Close()
		return nil, err
	}
	return &Shared{pool: pool, own: true}, nil
}

// Close closes the connections of a Shared opened with OpenShared; a
// store's is closed with the store.
func (s *Shared) Close() {
	if s.own {
		s.pool.Close()
	}
}

// Get returns the document name and its version; a document that does not
// exist is nil at version 0.
func (s *Shared) Get(ctx context.Context, name string) ([]byte, int64, error) {
	var value []byte
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT value, version FROM shared_state WHERE name = $1`, name).Scan(&value, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, formatError("postgres: shared "+name, err)
	}
	return value, version, nil
}

// Version returns the version of the document name, 0 when it does not
// exist: one row read by its key, cheap enough to poll.
func (s *Shared) Version(ctx context.Context, name string) (int64, error) {
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM shared_state WHERE name = $1`, name).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, formatError("postgres: shared "+name, err)
	}
	return version, nil
}

// Update replaces the document name with change(old) (old is nil when it
// does not exist) in one transaction that holds the document's row lock,
// so the updates of every node are serialized. When change fails nothing
// changes and its error is returned.
func (s *Shared) Update(ctx context.Context, name string, change func(old []byte) ([]byte, error)) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return formatError("postgres: shared "+name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// The row exists before it is locked, so two first updates serialize
	// on it too.
	if _, err := tx.Exec(ctx, `INSERT INTO shared_state (name, value, version, updated) VALUES ($1, '', 0, now()) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return formatError("postgres: shared "+name, err)
	}
	var old []byte
	var version int64
	if err := tx.QueryRow(ctx, `SELECT value, version FROM shared_state WHERE name = $1 FOR UPDATE`, name).Scan(&old, &version); err != nil {
		return formatError("postgres: shared "+name, err)
	}
	if version == 0 {
		old = nil
	}
	value, err := change(old)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE shared_state SET value = $2, version = $3, updated = now() WHERE name = $1`, name, value, version+1); err != nil {
		return formatError("postgres: shared "+name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return formatError("postgres: shared "+name, err)
	}
	return nil
}

// Delete removes the document name; removing one that does not exist is
// no error.
func (s *Shared) Delete(ctx context.Context, name string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM shared_state WHERE name = $1`, name); err != nil {
		return formatError("postgres: shared "+name, err)
	}
	return nil
}

// GetOrCreate returns the document name, first storing create() as it when
// it does not exist; when nodes start side by side, each gets the one
// stored first.
func (s *Shared) GetOrCreate(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	value, version, err := s.Get(ctx, name)
	if err != nil || version > 0 {
		return value, err
	}
	fresh, err := create()
	if err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO shared_state (name, value, version, updated) VALUES ($1, $2, 1, now())
		ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, version = 1, updated = now() WHERE shared_state.version = 0`, name, fresh); err != nil {
		return nil, formatError("postgres: shared "+name, err)
	}
	value, _, err = s.Get(ctx, name)
	return value, err
}
