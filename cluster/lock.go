package cluster

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Lock is the writers' mutual exclusion: the one that holds it is the
// active writer.
type Lock interface {
	// TryAcquire takes the lock if it is free and reports whether it is
	// now held.
	TryAcquire(ctx context.Context) (bool, error)
	// Held returns nil while the lock is still held.
	Held(ctx context.Context) error
	// Release gives the lock up.
	Release()
}

// PGLock is a PostgreSQL session advisory lock on a dedicated connection:
// when the holder dies its connection closes and PostgreSQL releases the
// lock, so a standby's next TryAcquire gets it. The key is derived from the
// lock's name and the schema the connection uses, so one lock guards one
// store.
type PGLock struct {
	dsn, name string
	conn      *pgx.Conn
}

// NewPGLock returns the writer lock of the store at dsn (a postgres://
// URL, search_path included when the store uses one).
func NewPGLock(dsn string) *PGLock { return NewPGLockNamed(dsn, "writer") }

// NewPGLockNamed returns the lock called name of the store at dsn, for
// other work that one node of a cluster does at a time.
func NewPGLockNamed(dsn, name string) *PGLock { return &PGLock{dsn: dsn, name: name} }

// lockSQL takes the lock of the connection's store: its key hashes the
// lock's name and the database's and schema's names, since advisory locks
// are per database.
const lockSQL = `SELECT pg_try_advisory_lock(hashtextextended('agenttrail.' || $1 || ':' || current_database() || ':' || current_schema(), 0))`

// TryAcquire connects when it has no connection and tries the lock.
func (l *PGLock) TryAcquire(ctx context.Context) (bool, error) {
	if l.conn == nil || l.conn.IsClosed() {
		conn, err := pgx.Connect(ctx, l.dsn)
		if err != nil {
			return false, fmt.Errorf("%s lock: connect: %w", l.name, err)
		}
		l.conn = conn
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, lockSQL, l.name).Scan(&ok); err != nil {
		l.Release()
		return false, fmt.Errorf("%s lock: %w", l.name, err)
	}
	return ok, nil
}

// Held pings the lock's connection: the lock lives as long as it does.
func (l *PGLock) Held(ctx context.Context) error {
	if l.conn == nil || l.conn.IsClosed() {
		return fmt.Errorf("%s lock: not held", l.name)
	}
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("%s lock: connection lost: %w", l.name, err)
	}
	return nil
}

// Release closes the connection, which releases the lock.
func (l *PGLock) Release() {
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn = nil
	}
}
