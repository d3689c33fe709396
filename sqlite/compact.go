package sqlite

import (
	"context"
	"time"
)

// maxCompactDays bounds the days one Append folds before its batch, so a
// file that was closed for months catches up over several batches.
const maxCompactDays = 31

// compact folds the hourly rollups of every day that is over (before today,
// UTC) and not yet folded into day rollups, one transaction per day, and
// advances days_until. It must be called with s.mu held. Days are final
// only in the sense that later events for them (late arrivals, retention)
// update both tables from then on.
func (s *Store) compact(ctx context.Context) error {
	today := dayOf(s.now().UnixNano())
	if s.daysUntil >= today {
		// days_until never goes back, and every write transaction reads
		// it afresh: no need to ask.
		return nil
	}
	if err := s.w.QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM meta WHERE name = 'days_until'), 0)").Scan(&s.daysUntil); err != nil {
		return formatError("compact", err)
	}
	if s.daysUntil >= today {
		return nil
	}
	from := s.daysUntil
	for n := 0; n < maxCompactDays; n++ {
		// Skip days without events: they need no day rows.
		var next *int64
		if err := s.w.QueryRowContext(ctx, "SELECT min(hour) FROM rollups WHERE dim = ? AND hour >= ?", dimTotal, from).Scan(&next); err != nil {
			return formatError("compact", err)
		}
		if next == nil || dayOf(*next) >= today {
			return s.setDaysUntil(ctx, today)
		}
		if err := s.compactDay(ctx, dayOf(*next)); err != nil {
			return err
		}
		from = dayOf(*next) + dayNS
	}
	return nil
}

func (s *Store) compactDay(ctx context.Context, day int64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return formatError("compact: begin", err)
	}
	defer tx.Rollback()
	// Another process on the same file may have folded the day already.
	if _, err := s.readState(ctx, tx); err != nil {
		return formatError("compact", err)
	}
	if s.daysUntil > day {
		return nil
	}
	for _, dim := range rolledDims() {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_days (`+rollupDayColumns+`)
			SELECT dim, ?, org, project, key, sum(count), `+usageTotals+`
			FROM rollups WHERE dim = ? AND hour >= ? AND hour < ?
			GROUP BY org, project, key`, day, dim, day, day+dayNS); err != nil {
			return formatError("compact", err)
		}
	}
	if _, err := tx.ExecContext(ctx, upsertMetaSQL, "days_until", day+dayNS); err != nil {
		return formatError("compact", err)
	}
	if err := tx.Commit(); err != nil {
		return formatError("compact: commit", err)
	}
	s.daysUntil = day + dayNS
	s.logger.Debug("folded hourly rollups into a day", "day", time.Unix(0, day).UTC().Format(time.DateOnly))
	return nil
}

func (s *Store) setDaysUntil(ctx context.Context, t int64) error {
	if _, err := s.w.ExecContext(ctx, upsertMetaSQL, "days_until", t); err != nil {
		return formatError("compact", err)
	}
	s.daysUntil = t
	return nil
}

const upsertMetaSQL = "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
