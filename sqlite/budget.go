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
	if err != nil {
		return b, formatError("put budget", err)
	}
	s.ledger.forgetBudgets(b.Org)
	return b, nil
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
	s.ledger.forgetBudgets(org)
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
	// A new snapshot first, so that the reservations counted are exactly
	// those whose events the cost read after it does not hold yet.
	if err := s.snapshot(ctx); err != nil {
		return nil, err
	}
	out := make([]agenttrail.BudgetState, 0, len(bs))
	for _, b := range bs {
		st, err := agenttrail.StateIn(ctx, ledgerTx{s: s}, s, b, now)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Reservations live in memory, in the ledger: the embedded store is one
// process's (see Open), so one mutex makes every decision atomic, and no
// reservation waits for the writer or an fsync behind an ingest commit. A
// restart forgets reservations: the calls in flight then count once their
// events are stored, as calls let through while the trail was down do.
//
// The ledger also keeps what a decision reads, so that a reservation runs
// no query (each costs tens of microseconds through database/sql, prepared
// anew; BenchmarkReserve): the budgets of each org, and a snapshot of the
// stored cost of every budget's current period. Reserve has the snapshot
// read anew in the background once it is older than snapshotEvery, and
// reads it itself, before deciding, once it is older than snapshotMaxAge
// (after a quiet spell). A refresh reads which held reservations have their
// event stored, then the stored cost of every budget in use, and installs
// both at once: a reservation stops counting only together with a snapshot
// that holds its event, so a checked call's cost never counts zero times
// and concurrent calls still overshoot a limit by at most one reservation.
// Between refreshes a call whose event was stored counts twice, as its
// reservation and as spend, which can only refuse early. Cost that no
// reservation held (a call let through unchecked while the trail was down,
// events from other recorders) counts from the next snapshot after it is
// stored: at most snapshotMaxAge after a query would have seen it.
type ledger struct {
	mu       sync.Mutex
	held     map[heldKey]*held
	perOrg   map[string]int // entries of held per org
	max      int            // of an org's entries; 0 is agenttrail.MaxHeldReservations
	prunedAt int64          // the now of the last sweep of expired reservations, unix ns

	budgets map[string][]agenttrail.Budget // per org, as stored, by name; an absent org is not loaded
	spent   map[spentKey]*spentEntry       // the snapshot of stored cost
	readAt  time.Time                      // wall clock: spent holds every event stored before it
	// epoch changes with every change of budgets and every snapshot read
	// under the mutex; a background refresh begun in another epoch
	// installs nothing.
	epoch      uint64
	refreshing bool // a background refresh runs
	closed     bool // the store is closing: start no refresh
	refreshes  sync.WaitGroup
}

type heldKey struct{ org, budget, id string }

type held struct {
	amount, created, expires int64 // nano-dollars, unix ns
	// drawn holds, for an allowance, the calls that drew from it: a draw
	// sent again moves nothing.
	drawn map[string]bool
}

// spentKey is a budget's period in the snapshot.
type spentKey struct {
	org, name string
	start     int64 // unix ns of the period's start; 0 for a total budget
}

type spentEntry struct {
	budget     agenttrail.Budget
	start, end time.Time
	nusd       int64
	used       bool // by a decision since the last refresh, which keeps only these
}

// pruneInterval is how often Reserve forgets expired reservations.
const pruneInterval = 100 * time.Millisecond

// How old the snapshot of stored cost may get: past snapshotEvery a
// decision starts a refresh in the background and goes on with the
// snapshot it has; past snapshotMaxAge it reads a new one first.
const (
	snapshotEvery  = 50 * time.Millisecond
	snapshotMaxAge = time.Second
)

// refreshTimeout bounds one background refresh.
const refreshTimeout = 10 * time.Second

// Reserve decides r under the ledger's mutex, on the ledger's snapshot.
func (s *Store) Reserve(ctx context.Context, r agenttrail.Reservation, now time.Time) (agenttrail.ReserveResult, error) {
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.UnixNano()-l.prunedAt >= int64(pruneInterval) {
		l.prunedAt = now.UnixNano()
		for k, h := range l.held {
			if h.expires <= now.UnixNano() {
				l.drop(k)
			}
		}
	}
	switch age := time.Since(l.readAt); {
	case age >= snapshotMaxAge:
		if err := s.snapshot(ctx); err != nil {
			return agenttrail.ReserveResult{}, err
		}
	case age >= snapshotEvery && !l.refreshing && !l.closed:
		l.refreshing = true
		l.refreshes.Add(1)
		go s.refresh()
	}
	return agenttrail.ReserveIn(ctx, ledgerTx{s: s, hot: true}, s, r, now)
}

// Settle lowers the reservations (org, id) to cost and keeps them for at
// most agenttrail.SettledTTL more, or ends them at a cost of 0: a
// settlement never raises what a reservation holds, nor holds it longer
// (see agenttrail.Budgets).
func (s *Store) Settle(ctx context.Context, org, id string, costNUSD int64, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return agenttrail.ContextError("sqlite: settle", err)
	}
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	for k, h := range s.ledger.held {
		switch {
		case k.org != org || k.id != id:
		case costNUSD <= 0:
			// Nothing left to count: the reservation ends now, and
			// no longer takes one of the org's held reservations.
			s.ledger.drop(k)
		case h.expires > now.UnixNano():
			h.amount = min(h.amount, costNUSD)
			h.expires = min(h.expires, now.Add(agenttrail.SettledTTL).UnixNano())
		}
	}
	return nil
}

// Draw moves what the call id took of the allowance (org, allowance) into
// a settled reservation of its own (see agenttrail.Budgets).
func (s *Store) Draw(ctx context.Context, org, allowance, id string, takenNUSD, costNUSD int64, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return agenttrail.ContextError("sqlite: draw", err)
	}
	if id == allowance {
		return agenttrail.Invalid("id", "must not be the allowance's")
	}
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []heldKey
	for k, h := range l.held {
		if k.org == org && k.id == allowance && h.expires > now.UnixNano() && !h.drawn[id] {
			keys = append(keys, k)
		}
	}
	limit := cmp.Or(l.max, agenttrail.MaxHeldReservations)
	for _, k := range keys {
		if costNUSD > 0 && l.perOrg[org]+len(keys) > limit || len(l.held[k].drawn) >= limit {
			// The allowance keeps the call's share: a proxy whose
			// draw failed does not release it.
			return agenttrail.Errorf(agenttrail.ERATELIMIT, "org %s holds %d budget reservations, the most one org may hold", org, l.perOrg[org])
		}
	}
	for _, k := range keys {
		h := l.held[k]
		moved := min(max(takenNUSD, 0), h.amount)
		h.amount -= moved
		if h.drawn == nil {
			h.drawn = map[string]bool{}
		}
		h.drawn[id] = true
		amount := min(max(costNUSD, 0), moved)
		if amount <= 0 {
			continue
		}
		ck := heldKey{org, k.budget, id}
		if c, ok := l.held[ck]; ok {
			c.amount = min(c.amount, amount)
			continue
		}
		l.held[ck] = &held{amount: amount, created: h.created, expires: min(h.expires, now.Add(agenttrail.SettledTTL).UnixNano())}
		l.perOrg[org]++
	}
	return nil
}

// heldIDs returns the ids of the held reservations per org. It must be
// called with the ledger's mutex held.
func (l *ledger) heldIDs() map[string][]string {
	seen := map[heldKey]bool{}
	byOrg := map[string][]string{}
	for k := range l.held {
		if id := (heldKey{org: k.org, id: k.id}); !seen[id] {
			seen[id] = true
			byOrg[k.org] = append(byOrg[k.org], k.id)
		}
	}
	return byOrg
}

// readStored returns, per org, which of ids have their event stored.
func (s *Store) readStored(ctx context.Context, ids map[string][]string) (map[string]map[string]bool, error) {
	out := make(map[string]map[string]bool, len(ids))
	for org, list := range ids {
		stored, err := s.storedIDs(ctx, org, list)
		if err != nil {
			return nil, err
		}
		out[org] = stored
	}
	return out, nil
}

// dropStored forgets the held reservations whose event is in stored.
func (l *ledger) dropStored(stored map[string]map[string]bool) {
	for k := range l.held {
		if stored[k.org][k.id] {
			l.drop(k)
		}
	}
}

// snapshot forgets the held reservations whose event is stored and starts
// a new snapshot, empty: each budget's stored cost is read as a decision
// first needs it, after this. It must be called with the ledger's mutex
// held.
func (s *Store) snapshot(ctx context.Context) error {
	l := &s.ledger
	readAt := time.Now()
	stored, err := s.readStored(ctx, l.heldIDs())
	if err != nil {
		return err
	}
	l.dropStored(stored)
	l.spent, l.readAt = map[spentKey]*spentEntry{}, readAt
	l.epoch++
	return nil
}

// refresh reads a new snapshot in the background, without the ledger's
// mutex, and installs it unless the epoch changed meanwhile: first which
// held reservations have their event stored, then the cost of the budgets
// decisions used since the last refresh, so the cost read holds every
// event of the reservations it lets go.
func (s *Store) refresh() {
	l := &s.ledger
	defer l.refreshes.Done()
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	l.mu.Lock()
	epoch, ids := l.epoch, l.heldIDs()
	entries := make(map[spentKey]spentEntry, len(l.spent))
	for k, e := range l.spent {
		if e.used {
			entries[k] = *e
		}
	}
	l.mu.Unlock()

	readAt := time.Now()
	stored, err := s.readStored(ctx, ids)
	spent := make(map[spentKey]*spentEntry, len(entries))
	for k, e := range entries {
		if err != nil {
			break
		}
		e.used = false
		e.nusd, err = agenttrail.SpentNUSD(ctx, s, &e.budget, e.start, e.end)
		spent[k] = &e
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.refreshing = false
	if err != nil {
		// The next decisions go on with the snapshot they have, and read
		// one themselves once it is too old.
		s.logger.Warn("sqlite: refreshing the budgets' snapshot of stored cost failed", "err", err)
		return
	}
	if l.epoch != epoch {
		return
	}
	l.dropStored(stored)
	l.spent, l.readAt = spent, readAt
}

// forgetBudgets drops what the ledger keeps of org's budgets after one of
// them changed.
func (l *ledger) forgetBudgets(org string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.budgets, org)
	for k := range l.spent {
		if k.org == org {
			delete(l.spent, k)
		}
	}
	l.epoch++
}

// stopRefreshing waits for a background refresh and starts no other, for
// Close.
func (l *ledger) stopRefreshing() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.refreshes.Wait()
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
// ledger's mutex held, which is the lock LockBudgets stands for. A hot one
// (Reserve's) reads budgets and stored cost from the ledger, loading what
// it does not hold yet; the other (BudgetStates', after a new snapshot)
// reads them from the store.
type ledgerTx struct {
	s   *Store
	hot bool
}

func (t ledgerTx) LockBudgets(ctx context.Context, r *agenttrail.Reservation) ([]agenttrail.Budget, error) {
	l := &t.s.ledger
	if bs, ok := l.budgets[r.Org]; ok && t.hot {
		return bs, nil
	}
	bs, err := queryBudgets(ctx, t.s.r, `SELECT `+budgetCols+` FROM budgets WHERE org = ? ORDER BY name`, r.Org)
	if err != nil {
		return nil, err
	}
	if l.budgets == nil {
		l.budgets = map[string][]agenttrail.Budget{}
	}
	l.budgets[r.Org] = bs
	return bs, nil
}

// SpentNUSD implements agenttrail.SpentReader.
func (t ledgerTx) SpentNUSD(ctx context.Context, b *agenttrail.Budget, start, end time.Time) (int64, error) {
	if !t.hot {
		return agenttrail.SpentNUSD(ctx, t.s, b, start, end)
	}
	l := &t.s.ledger
	k := spentKey{org: b.Org, name: b.Name}
	if !start.IsZero() {
		k.start = start.UnixNano()
	}
	if e, ok := l.spent[k]; ok {
		e.used = true
		return e.nusd, nil
	}
	n, err := agenttrail.SpentNUSD(ctx, t.s, b, start, end)
	if err != nil {
		return 0, err
	}
	l.spent[k] = &spentEntry{budget: *b, start: start, end: end, nusd: n, used: true}
	return n, nil
}

func (t ledgerTx) ReservedNUSD(ctx context.Context, b *agenttrail.Budget, since, now time.Time) (int64, error) {
	from := int64(math.MinInt64)
	if !since.IsZero() {
		from = since.UnixNano()
	}
	var sum int64
	for k, h := range t.s.ledger.held {
		if k.org == b.Org && k.budget == b.Name && h.expires > now.UnixNano() && h.created >= from {
			sum = agenttrail.AddSat(sum, h.amount)
		}
	}
	return sum, nil
}

func (t ledgerTx) Hold(ctx context.Context, r *agenttrail.Reservation, holds []agenttrail.Hold, now time.Time) error {
	l := &t.s.ledger
	if l.held == nil {
		l.held, l.perOrg = map[heldKey]*held{}, map[string]int{}
	}
	if l.perOrg[r.Org]+len(holds) > cmp.Or(l.max, agenttrail.MaxHeldReservations) {
		return agenttrail.Errorf(agenttrail.ERATELIMIT, "org %s holds %d budget reservations, the most one org may hold; they end when their calls settle and are recorded, or expire",
			r.Org, l.perOrg[r.Org])
	}
	for _, h := range holds {
		k := heldKey{r.Org, h.Budget, r.ID}
		if _, ok := l.held[k]; !ok {
			l.perOrg[r.Org]++
		}
		l.held[k] = &held{amount: r.AmountNUSD, created: now.UnixNano(), expires: h.Expires.UnixNano()}
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
