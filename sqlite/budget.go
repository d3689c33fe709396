package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/agenttrail/agenttrail"
)

var _ agenttrail.Budgets = (*Store)(nil)

const budgetCols = "org, name, project, actor_id, model, limit_nusd, period, timezone, warn_at, updated_at, updated_by"

// PutBudget creates or replaces the budget (b.Org, b.Name).
func (s *Store) PutBudget(ctx context.Context, b agenttrail.Budget) (agenttrail.Budget, error) {
	if err := b.Validate(); err != nil {
		return b, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.ExecContext(ctx, `INSERT INTO budgets (`+budgetCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (org, name) DO UPDATE SET project=excluded.project, actor_id=excluded.actor_id,
		model=excluded.model, limit_nusd=excluded.limit_nusd, period=excluded.period, timezone=excluded.timezone,
		warn_at=excluded.warn_at, updated_at=excluded.updated_at, updated_by=excluded.updated_by`,
		b.Org, b.Name, b.Project, b.ActorID, b.Model, b.LimitNUSD, string(b.Period), b.Timezone, b.WarnAt,
		b.UpdatedAt.UnixNano(), b.UpdatedBy)
	return b, formatError("put budget", err)
}

// ListBudgets returns the budgets of org, or of every org when org is "".
func (s *Store) ListBudgets(ctx context.Context, org string) ([]agenttrail.Budget, error) {
	return queryBudgets(ctx, s.r, `SELECT `+budgetCols+` FROM budgets WHERE ? = '' OR org = ? ORDER BY org, name`, org, org)
}

// DeleteBudget removes the budget (org, name) and its reservations.
func (s *Store) DeleteBudget(ctx context.Context, org, name string) (agenttrail.Budget, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return agenttrail.Budget{}, formatError("delete budget", err)
	}
	defer tx.Rollback()
	bs, err := queryBudgets(ctx, tx, `SELECT `+budgetCols+` FROM budgets WHERE org = ? AND name = ?`, org, name)
	if err != nil {
		return agenttrail.Budget{}, err
	}
	if len(bs) == 0 {
		return agenttrail.Budget{}, agenttrail.Errorf(agenttrail.ENOTFOUND, "no budget %q in org %s", name, org)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM budgets WHERE org = ? AND name = ?`, org, name); err != nil {
		return agenttrail.Budget{}, formatError("delete budget", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM budget_reservations WHERE org = ? AND budget = ?`, org, name); err != nil {
		return agenttrail.Budget{}, formatError("delete budget", err)
	}
	return bs[0], formatError("delete budget", tx.Commit())
}

// BudgetStates returns the state at now of every budget of org ("" for
// all). It reads without locking: a snapshot, not a decision.
func (s *Store) BudgetStates(ctx context.Context, org string, now time.Time) ([]agenttrail.BudgetState, error) {
	bs, err := s.ListBudgets(ctx, org)
	if err != nil {
		return nil, err
	}
	tx := budgetTx{q: s.r}
	out := make([]agenttrail.BudgetState, 0, len(bs))
	for _, b := range bs {
		st, err := agenttrail.StateIn(ctx, tx, s, b, now)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Reserve decides r on the writer connection: the writer lock and an
// IMMEDIATE transaction serialize it with every other write, in this
// process and any other on the file, so no event lands and no other
// reservation is taken while it decides.
func (s *Store) Reserve(ctx context.Context, r agenttrail.Reservation, now time.Time) (agenttrail.ReserveResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return agenttrail.ReserveResult{}, formatError("reserve", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM budget_reservations WHERE org = ? AND expires_at <= ?`, r.Org, now.UnixNano()); err != nil {
		return agenttrail.ReserveResult{}, formatError("reserve", err)
	}
	res, err := agenttrail.ReserveIn(ctx, budgetTx{q: tx}, s, r, now)
	if err != nil {
		return res, err
	}
	return res, formatError("reserve", tx.Commit())
}

// Settle replaces the reservations (org, id) with cost, kept for
// agenttrail.SettledTTL.
func (s *Store) Settle(ctx context.Context, org, id string, costNUSD int64, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.ExecContext(ctx, `UPDATE budget_reservations SET amount_nusd = ?, expires_at = ?
		WHERE org = ? AND id = ? AND expires_at > ?`,
		max(costNUSD, 0), now.Add(agenttrail.SettledTTL).UnixNano(), org, id, now.UnixNano())
	return formatError("settle", err)
}

// querier is what a *sql.DB and a *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// budgetTx is agenttrail.BudgetTx in SQLite. Locking is the writer's:
// LockBudgets only reads.
type budgetTx struct{ q querier }

func (t budgetTx) LockBudgets(ctx context.Context, r *agenttrail.Reservation) ([]agenttrail.Budget, error) {
	return queryBudgets(ctx, t.q, `SELECT `+budgetCols+` FROM budgets WHERE org = ?
		AND project IN ('', ?) AND actor_id IN ('', ?) ORDER BY name`,
		r.Org, r.Project, r.ActorID)
}

func (t budgetTx) ReservedNUSD(ctx context.Context, b *agenttrail.Budget, since, now time.Time) (int64, error) {
	from := int64(math.MinInt64)
	if !since.IsZero() {
		from = since.UnixNano()
	}
	var sum int64
	err := t.q.QueryRowContext(ctx, `SELECT coalesce(sum(amount_nusd), 0) FROM budget_reservations r
		WHERE r.org = ? AND r.budget = ? AND r.expires_at > ? AND r.created_at >= ?
		AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = r.id AND e.org = r.org)`,
		b.Org, b.Name, now.UnixNano(), from).Scan(&sum)
	return sum, formatError("sum reservations", err)
}

func (t budgetTx) Hold(ctx context.Context, r *agenttrail.Reservation, budgets []string, now time.Time) error {
	for _, name := range budgets {
		if _, err := t.q.ExecContext(ctx, `INSERT INTO budget_reservations (org, budget, id, amount_nusd, created_at, expires_at)
			VALUES (?,?,?,?,?,?) ON CONFLICT (org, budget, id) DO UPDATE SET amount_nusd = excluded.amount_nusd,
			created_at = excluded.created_at, expires_at = excluded.expires_at`,
			r.Org, name, r.ID, r.AmountNUSD, now.UnixNano(), now.Add(r.TTL).UnixNano()); err != nil {
			return formatError("hold reservation", err)
		}
	}
	return nil
}

func queryBudgets(ctx context.Context, q querier, query string, args ...any) ([]agenttrail.Budget, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, formatError("read budgets", err)
	}
	defer rows.Close()
	var out []agenttrail.Budget
	for rows.Next() {
		var b agenttrail.Budget
		var period string
		var updated int64
		if err := rows.Scan(&b.Org, &b.Name, &b.Project, &b.ActorID, &b.Model, &b.LimitNUSD, &period,
			&b.Timezone, &b.WarnAt, &updated, &b.UpdatedBy); err != nil {
			return nil, formatError("read budgets", err)
		}
		b.Period, b.UpdatedAt = agenttrail.Period(period), time.Unix(0, updated).UTC()
		out = append(out, b)
	}
	return out, formatError("read budgets", errors.Join(rows.Err()))
}
