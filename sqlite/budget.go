package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"math"
	"strings"
	"sync"
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
	if err := tx.Commit(); err != nil {
		return agenttrail.Budget{}, formatError("delete budget", err)
	}
	s.ledger.mu.Lock()
	for k := range s.ledger.held {
		if k.org == org && k.budget == name {
			s.ledger.drop(k)
		}
	}
	s.ledger.mu.Unlock()
	return bs[0], nil
}

// BudgetStates returns the state at now of every budget of org ("" for
// all). It reads without deciding anything: a snapshot.
func (s *Store) BudgetStates(ctx context.Context, org string, now time.Time) ([]agenttrail.BudgetState, error) {
	bs, err := s.ListBudgets(ctx, org)
	if err != nil {
		return nil, err
	}
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	out := make([]agenttrail.BudgetState, 0, len(bs))
	for _, b := range bs {
		st, err := agenttrail.StateIn(ctx, ledgerTx{s}, s, b, now)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Reservations live in memory, in the ledger: the embedded store is one
// process's (see Open), so one mutex makes every decision atomic, and no
// reservation waits for the writer or an fsync behind an ingest commit
// (that wait was most of a budget check's latency, BenchmarkBudgetCheck in
// capture/llm). Spend and the events that end reservations are read
// through the read pool, after the mutex is held. A restart forgets
// reservations: the calls in flight then count once their events are
// stored, as calls let through while the trail was down do.
type ledger struct {
	mu       sync.Mutex
	held     map[heldKey]*held
	perOrg   map[string]int // entries of held per org
	max      int            // of an org's entries; 0 is agenttrail.MaxHeldReservations
	prunedAt int64          // unix ns
}

type heldKey struct{ org, budget, id string }

type held struct {
	amount, created, expires int64 // nano-dollars, unix ns
}

// pruneInterval is how often Reserve forgets the reservations that no
// longer count: expired, or whose event is stored.
const pruneInterval = 100 * time.Millisecond

// Reserve decides r under the ledger's mutex.
func (s *Store) Reserve(ctx context.Context, r agenttrail.Reservation, now time.Time) (agenttrail.ReserveResult, error) {
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	if now.UnixNano()-s.ledger.prunedAt >= int64(pruneInterval) {
		s.ledger.prunedAt = now.UnixNano()
		if err := s.prune(ctx, now); err != nil {
			return agenttrail.ReserveResult{}, err
		}
	}
	return agenttrail.ReserveIn(ctx, ledgerTx{s}, s, r, now)
}

// Settle lowers the reservations (org, id) to cost and keeps them for at
// most agenttrail.SettledTTL more: a settlement never raises what a
// reservation holds, nor holds it longer (see agenttrail.Budgets).
func (s *Store) Settle(ctx context.Context, org, id string, costNUSD int64, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return agenttrail.ContextError("sqlite: settle", err)
	}
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	for k, h := range s.ledger.held {
		if k.org == org && k.id == id && h.expires > now.UnixNano() {
			h.amount = min(h.amount, max(costNUSD, 0))
			h.expires = min(h.expires, now.Add(agenttrail.SettledTTL).UnixNano())
		}
	}
	return nil
}

// prune forgets expired reservations and those whose event is stored. It
// must be called with the ledger's mutex held.
func (s *Store) prune(ctx context.Context, now time.Time) error {
	byOrg := map[string][]string{}
	for k, h := range s.ledger.held {
		if h.expires <= now.UnixNano() {
			s.ledger.drop(k)
			continue
		}
		byOrg[k.org] = append(byOrg[k.org], k.id)
	}
	for org, ids := range byOrg {
		stored, err := s.storedIDs(ctx, org, ids)
		if err != nil {
			return err
		}
		for k := range s.ledger.held {
			if k.org == org && stored[k.id] {
				s.ledger.drop(k)
			}
		}
	}
	return nil
}

// storedIDs returns which of ids are the ids of stored events of org.
func (s *Store) storedIDs(ctx context.Context, org string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	const chunk = 500 // below SQLite's bound on parameters
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, 0, n+1)
		args = append(args, org)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		rows, err := s.r.QueryContext(ctx, `SELECT id FROM events WHERE org = ? AND id IN (?`+strings.Repeat(",?", n-1)+`)`, args...)
		if err != nil {
			return nil, formatError("read reserved events", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, formatError("read reserved events", err)
			}
			out[id] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, formatError("read reserved events", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// ledgerTx is agenttrail.BudgetTx on the ledger; its methods run with the
// ledger's mutex held, which is the lock LockBudgets stands for.
type ledgerTx struct{ s *Store }

func (t ledgerTx) LockBudgets(ctx context.Context, r *agenttrail.Reservation) ([]agenttrail.Budget, error) {
	return queryBudgets(ctx, t.s.r, `SELECT `+budgetCols+` FROM budgets WHERE org = ?
		AND project IN ('', ?) AND actor_id IN ('', ?) ORDER BY name`,
		r.Org, r.Project, r.ActorID)
}

func (t ledgerTx) ReservedNUSD(ctx context.Context, b *agenttrail.Budget, since, now time.Time) (int64, error) {
	from := int64(math.MinInt64)
	if !since.IsZero() {
		from = since.UnixNano()
	}
	var ids []string
	for k, h := range t.s.ledger.held {
		if k.org == b.Org && k.budget == b.Name && h.expires > now.UnixNano() && h.created >= from {
			ids = append(ids, k.id)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	stored, err := t.s.storedIDs(ctx, b.Org, ids)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, id := range ids {
		if !stored[id] {
			sum = agenttrail.AddSat(sum, t.s.ledger.held[heldKey{b.Org, b.Name, id}].amount)
		}
	}
	return sum, nil
}

func (t ledgerTx) Hold(ctx context.Context, r *agenttrail.Reservation, budgets []string, now time.Time) error {
	l := &t.s.ledger
	if l.held == nil {
		l.held, l.perOrg = map[heldKey]*held{}, map[string]int{}
	}
	if l.perOrg[r.Org]+len(budgets) > cmp.Or(l.max, agenttrail.MaxHeldReservations) {
		return agenttrail.Errorf(agenttrail.ERATELIMIT, "org %s holds %d budget reservations, the most one org may hold; they end when their calls settle and are recorded, or expire",
			r.Org, l.perOrg[r.Org])
	}
	for _, name := range budgets {
		k := heldKey{r.Org, name, r.ID}
		if _, ok := l.held[k]; !ok {
			l.perOrg[r.Org]++
		}
		l.held[k] = &held{amount: r.AmountNUSD, created: now.UnixNano(), expires: now.Add(r.TTL).UnixNano()}
	}
	return nil
}

// drop forgets the reservation k.
func (l *ledger) drop(k heldKey) {
	if _, ok := l.held[k]; ok {
		delete(l.held, k)
		if l.perOrg[k.org]--; l.perOrg[k.org] <= 0 {
			delete(l.perOrg, k.org)
		}
	}
}

// querier is what a *sql.DB and a *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
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
