package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/agenttrail/agenttrail"
)

var _ agenttrail.Budgets = (*Store)(nil)

const budgetCols = "org, name, project, actor_id, model, limit_nusd, period, timezone, warn_at, updated_at, updated_by"

// pgq is what pgxpool.Pool and pgx.Tx have in common for budgets.
type pgq interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// PutBudget creates or replaces the budget (b.Org, b.Name).
func (s *Store) PutBudget(ctx context.Context, b agenttrail.Budget) (agenttrail.Budget, error) {
	if err := b.Validate(); err != nil {
		return b, err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO budgets (`+budgetCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)
		ON CONFLICT (org, name) DO UPDATE SET project=excluded.project, actor_id=excluded.actor_id,
		model=excluded.model, limit_nusd=excluded.limit_nusd, period=excluded.period, timezone=excluded.timezone,
		warn_at=excluded.warn_at, updated_at=excluded.updated_at, updated_by=excluded.updated_by`,
		b.Org, b.Name, b.Project, b.ActorID, b.Model, b.LimitNUSD, string(b.Period), b.Timezone, b.WarnAt,
		b.UpdatedAt, b.UpdatedBy)
	return b, formatError("postgres: put budget", err)
}

// ListBudgets returns the budgets of org, or of every org when org is "".
func (s *Store) ListBudgets(ctx context.Context, org string) ([]agenttrail.Budget, error) {
	return queryBudgets(ctx, s.pool, `SELECT `+budgetCols+` FROM budgets WHERE $1 = '' OR org = $1 ORDER BY org, name`, org)
}

// DeleteBudget removes the budget (org, name) and its reservations.
func (s *Store) DeleteBudget(ctx context.Context, org, name string) (agenttrail.Budget, error) {
	var out agenttrail.Budget
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		bs, err := queryBudgets(ctx, tx, `DELETE FROM budgets WHERE org = $1 AND name = $2 RETURNING `+budgetCols, org, name)
		if err != nil {
			return err
		}
		if len(bs) == 0 {
			return agenttrail.Errorf(agenttrail.ENOTFOUND, "no budget %q in org %s", name, org)
		}
		out = bs[0]
		_, err = tx.Exec(ctx, `DELETE FROM budget_reservations WHERE org = $1 AND budget = $2`, org, name)
		return err
	})
	return out, formatError("postgres: delete budget", err)
}

// BudgetStates returns the state at now of every budget of org ("" for
// all). It reads without locking: a snapshot, not a decision.
func (s *Store) BudgetStates(ctx context.Context, org string, now time.Time) ([]agenttrail.BudgetState, error) {
	bs, err := s.ListBudgets(ctx, org)
	if err != nil {
		return nil, err
	}
	out := make([]agenttrail.BudgetState, 0, len(bs))
	for _, b := range bs {
		st, err := agenttrail.StateIn(ctx, budgetTx{q: s.pool}, s, b, now)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Reserve decides r in one transaction that locks the rows of the budgets
// that apply (FOR UPDATE, in name order, so two servers never deadlock):
// a second Reserve on any of them, from this process or another sharing the
// database, waits until this one commits, and then, at READ COMMITTED,
// its statements see this one's reservation.
func (s *Store) Reserve(ctx context.Context, r agenttrail.Reservation, now time.Time) (agenttrail.ReserveResult, error) {
	var res agenttrail.ReserveResult
	select {
	case s.reserving <- struct{}{}:
		defer func() { <-s.reserving }()
	case <-ctx.Done():
		return res, formatError("postgres: reserve", ctx.Err())
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		res, err = agenttrail.ReserveIn(ctx, budgetTx{q: tx, lock: true}, s, r, now)
		return err
	})
	if last := s.prunedAt.Load(); now.UnixNano()-last >= int64(100*time.Millisecond) && s.prunedAt.CompareAndSwap(last, now.UnixNano()) {
		// Expired reservations, and those whose event is stored, only
		// lengthen the sums; another process pruning at once may make
		// this one wait or fail, which costs nothing.
		if _, perr := s.pool.Exec(ctx, `DELETE FROM budget_reservations r WHERE r.expires_at <= $1
			OR EXISTS (SELECT 1 FROM event_ids e WHERE e.id = r.id AND e.org = r.org)`, now); perr != nil {
			s.logger.Warn("postgres: pruning budget reservations", "err", perr)
		}
	}
	return res, formatError("postgres: reserve", err)
}

// Settle lowers the reservations (org, id) to cost and keeps them for at
// most agenttrail.SettledTTL more: a settlement never raises what a
// reservation holds, nor holds it longer (see agenttrail.Budgets). It locks
// the rows in budget order first, as Draw does, so the two never deadlock.
func (s *Store) Settle(ctx context.Context, org, id string, costNUSD int64, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM budget_reservations WHERE org = $1 AND id = $2 ORDER BY budget FOR UPDATE`, org, id); err != nil {
			return err
		}
		if costNUSD <= 0 {
			// Nothing left to count: the reservation ends now, and no
			// longer takes one of the org's MaxHeldReservations; an
			// allowance's marks of the calls that drew from it end
			// with it.
			_, err := tx.Exec(ctx, `DELETE FROM budget_reservations WHERE org = $1
				AND (id = $2 OR (id >= $2 || '/' AND id < $2 || '0'))`, org, id)
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE budget_reservations SET amount_nusd = least(amount_nusd, $1),
			expires_at = least(expires_at, $2) WHERE org = $3 AND id = $4 AND expires_at > $5`,
			costNUSD, now.Add(agenttrail.SettledTTL), org, id, now)
		return err
	})
	return formatError("postgres: settle", err)
}

// Draw moves what the call id took of the allowance (org, allowance) into
// a settled reservation of its own (see agenttrail.Budgets). It locks the
// allowance's rows first, in budget order, so draws from one allowance
// take turns, and then moves in one statement, whose snapshot sees the
// draws before it: a Reserve summing the budget's reservations sees both
// changes or neither. Each draw leaves a mark in the allowance's budgets,
// a row "allowance/id" of $0 that lives as long as the allowance, so a
// draw sent again, even after the call's event was stored and its hold
// pruned, moves nothing.
func (s *Store) Draw(ctx context.Context, org, allowance, id string, takenNUSD, costNUSD int64, now time.Time) error {
	if id == allowance {
		return agenttrail.Invalid("id", "must not be the allowance's")
	}
	mark := allowance + "/" + id
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT budget FROM budget_reservations WHERE org = $1 AND id = $2 AND expires_at > $3
			ORDER BY budget FOR UPDATE`, org, allowance, now)
		if err != nil {
			return err
		}
		budgets, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(budgets) == 0 {
			return err
		}
		var marked, held int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE id = $3), count(*) FROM budget_reservations
			WHERE org = $1 AND expires_at > $2`, org, now, mark).Scan(&marked, &held); err != nil {
			return err
		}
		if marked >= int64(len(budgets)) {
			return nil // drawn already
		}
		if held+2*int64(len(budgets)) > agenttrail.MaxHeldReservations {
			// The allowance keeps the call's share: a proxy whose
			// draw failed does not release it.
			return agenttrail.Errorf(agenttrail.ERATELIMIT, "org %s holds %d budget reservations, the most one org may hold", org, held)
		}
		_, err = tx.Exec(ctx, `WITH a AS (
				SELECT r.budget, r.created_at, r.expires_at, least($4::bigint, r.amount_nusd) AS moved
				FROM budget_reservations r WHERE r.org = $1 AND r.id = $2 AND r.expires_at > $3
				AND NOT EXISTS (SELECT 1 FROM budget_reservations m WHERE m.org = $1 AND m.budget = r.budget AND m.id = $8)),
			u AS (
				UPDATE budget_reservations r SET amount_nusd = r.amount_nusd - a.moved
				FROM a WHERE r.org = $1 AND r.id = $2 AND r.budget = a.budget),
			m AS (
				INSERT INTO budget_reservations (org, budget, id, amount_nusd, created_at, expires_at)
				SELECT $1, a.budget, $8, 0, a.created_at, a.expires_at FROM a
				ON CONFLICT (org, budget, id) DO NOTHING)
			INSERT INTO budget_reservations (org, budget, id, amount_nusd, created_at, expires_at)
			SELECT $1, a.budget, $5, least($6::bigint, a.moved), a.created_at, least(a.expires_at, $7) FROM a
			WHERE least($6::bigint, a.moved) > 0
			ON CONFLICT (org, budget, id) DO UPDATE SET amount_nusd = least(budget_reservations.amount_nusd, excluded.amount_nusd)`,
			org, allowance, now, max(takenNUSD, 0), id, max(costNUSD, 0), now.Add(agenttrail.SettledTTL), mark)
		return err
	})
	return formatError("postgres: draw", err)
}

// budgetTx is agenttrail.BudgetTx in PostgreSQL; lock makes LockBudgets
// take row locks (it must then run in a transaction).
type budgetTx struct {
	q    pgq
	lock bool
}

func (t budgetTx) LockBudgets(ctx context.Context, r *agenttrail.Reservation) ([]agenttrail.Budget, error) {
	q := `SELECT ` + budgetCols + ` FROM budgets WHERE org = $1
		AND project IN ('', $2) AND actor_id IN ('', $3) ORDER BY name`
	if t.lock {
		q += ` FOR UPDATE`
	}
	return queryBudgets(ctx, t.q, q, r.Org, r.Project, r.ActorID)
}

func (t budgetTx) ReservedNUSD(ctx context.Context, b *agenttrail.Budget, since, now time.Time) (int64, error) {
	var sum int64
	err := t.q.QueryRow(ctx, `SELECT least(coalesce(sum(amount_nusd), 0), 9223372036854775807)::bigint FROM budget_reservations r
		WHERE r.org = $1 AND r.budget = $2 AND r.expires_at > $3 AND r.created_at >= $4
		AND NOT EXISTS (SELECT 1 FROM event_ids e WHERE e.id = r.id AND e.org = r.org)`,
		b.Org, b.Name, now, since).Scan(&sum)
	return sum, formatError("postgres: sum reservations", err)
}

func (t budgetTx) Hold(ctx context.Context, r *agenttrail.Reservation, holds []agenttrail.Hold, now time.Time) error {
	var held int64
	if err := t.q.QueryRow(ctx, `SELECT count(*) FROM budget_reservations WHERE org = $1 AND expires_at > $2`,
		r.Org, now).Scan(&held); err != nil {
		return formatError("postgres: count reservations", err)
	}
	if held+int64(len(holds)) > agenttrail.MaxHeldReservations {
		return agenttrail.Errorf(agenttrail.ERATELIMIT, "org %s holds %d budget reservations, the most one org may hold; they end when their calls settle and are recorded, or expire",
			r.Org, held)
	}
	for _, h := range holds {
		if _, err := t.q.Exec(ctx, `INSERT INTO budget_reservations (org, budget, id, amount_nusd, created_at, expires_at)
			VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (org, budget, id) DO UPDATE SET amount_nusd = excluded.amount_nusd,
			created_at = excluded.created_at, expires_at = excluded.expires_at`,
			r.Org, h.Budget, r.ID, r.AmountNUSD, now, h.Expires); err != nil {
			return formatError("postgres: hold reservation", err)
		}
	}
	return nil
}

func queryBudgets(ctx context.Context, q pgq, query string, args ...any) ([]agenttrail.Budget, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, formatError("postgres: read budgets", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (agenttrail.Budget, error) {
		var b agenttrail.Budget
		var period string
		err := row.Scan(&b.Org, &b.Name, &b.Project, &b.ActorID, &b.Model, &b.LimitNUSD, &period,
			&b.Timezone, &b.WarnAt, &b.UpdatedAt, &b.UpdatedBy)
		b.Period, b.UpdatedAt = agenttrail.Period(period), b.UpdatedAt.UTC()
		return b, err
	})
	return out, formatError("postgres: read budgets", err)
}
