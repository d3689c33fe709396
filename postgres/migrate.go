package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles are the schema migrations, named NNNN_what.sql and applied
// in number order, each once.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and _", name)
		}
		b, err := migrationFiles.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies the pending migrations in one transaction under an
// advisory lock keyed by the schema, so concurrent Opens of one schema apply
// each migration once and Opens of other schemas do not wait.
func migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	ms, err := loadMigrations()
	if err != nil {
		return agenttrail.Errorf(agenttrail.EINTERNAL, "postgres: migrations: %v", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return formatError("postgres: migrate", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('agenttrail.migrate.' || current_schema(), 0))"); err != nil {
		return formatError("postgres: migrate: lock", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return formatError("postgres: migrate", err)
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return formatError("postgres: migrate", err)
	}
	if last := ms[len(ms)-1].version; current > last {
		return agenttrail.Errorf(agenttrail.EINTERNAL, "postgres: schema is at version %d, newer than this binary's %d", current, last)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return formatError("postgres: migrate "+m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return formatError("postgres: migrate "+m.name, err)
		}
		logger.Info("applied migration", "migration", m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return formatError("postgres: migrate: commit", err)
	}
	return nil
}
