package agenttrail

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// Budgets are spending limits on the LLM cost the trail records (see
// docs/architecture.md, "Budgets"). A budget names an org and, optionally,
// a project, an actor and a model; a call counts against every budget whose
// set scopes all match it. Amounts are integer nano-dollars (NanoUSD per
// dollar), like the stores' cost rollups, so sums stay exact.

// NanoUSD is one US dollar in the unit budgets count in.
const NanoUSD = 1_000_000_000

// MaxBudgetUSD bounds a budget's limit: a billion dollars, far below where
// nano-dollar sums could overflow.
const MaxBudgetUSD = 1_000_000_000

// Period is how often a budget starts again from zero.
type Period string

// The periods. Day, week and month are calendar-aligned in the budget's
// time zone (weeks start on Monday); total never resets.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
	PeriodTotal Period = "total"
)

// Budget is one spending limit.
type Budget struct {
	Name      string
	Org       string
	Project   string // "" is every project
	ActorID   string // "" is every actor
	Model     string // "" is every model
	LimitNUSD int64
	Period    Period
	Timezone  string // IANA name; "" is UTC
	WarnAt    int    // percent of the limit at which budget.warning is recorded; 0 never
	UpdatedAt time.Time
	UpdatedBy string
}

var budgetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Validate checks b and sets its defaults (UTC), naming the field at fault.
func (b *Budget) Validate() error {
	if !budgetName.MatchString(b.Name) {
		return Invalid("name", "must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit, not %q", b.Name)
	}
	if b.Org == "" {
		return Invalid("org", "is required")
	}
	for _, c := range []struct{ name, v string }{{"org", b.Org}, {"project", b.Project}} {
		if err := checkScope(c.name, c.v); err != nil {
			return err
		}
	}
	for _, c := range []struct{ name, v string }{{"actor_id", b.ActorID}, {"model", b.Model}} {
		if err := checkText(c.name, c.v, maxNameLen, true); err != nil {
			return err
		}
	}
	if b.LimitNUSD <= 0 || b.LimitNUSD > MaxBudgetUSD*NanoUSD {
		return Invalid("limit_usd", "must be more than 0 and at most %d", MaxBudgetUSD)
	}
	switch b.Period {
	case PeriodDay, PeriodWeek, PeriodMonth, PeriodTotal:
	default:
		return Invalid("period", "must be day, week, month or total, not %q", b.Period)
	}
	b.UpdatedAt = b.UpdatedAt.Truncate(time.Microsecond).UTC() // what every store keeps
	if b.Timezone == "" {
		b.Timezone = "UTC"
	}
	if _, err := time.LoadLocation(b.Timezone); err != nil || strings.EqualFold(b.Timezone, "local") {
		return Invalid("timezone", "must be an IANA time zone such as Europe/Berlin, not %q", b.Timezone)
	}
	if b.WarnAt < 0 || b.WarnAt > 100 {
		return Invalid("warn_at", "must be a percentage from 0 to 100, not %d", b.WarnAt)
	}
	return nil
}

// Applies reports whether a call of actor on model in org and project
// counts against b.
func (b *Budget) Applies(org, project, actor, model string) bool {
	return b.Org == org && (b.Project == "" || b.Project == project) &&
		(b.ActorID == "" || b.ActorID == actor) && (b.Model == "" || ModelMatches(b.Model, model))
}

// ModelMatches reports whether model, as a call asked for it or an answer
// named it, is the model scope names: the same name, or the same name with
// a snapshot date ("gpt-4o-2024-08-06" is gpt-4o, "claude-sonnet-4-5-20250929"
// is claude-sonnet-4-5). APIs answer with the dated snapshot of the model
// asked for, and the trail records what they answer.
func ModelMatches(scope, model string) bool {
	return model == scope || ModelWithoutDate(model) == scope
}

// ModelWithoutDate removes a trailing snapshot date, -YYYY-MM-DD (OpenAI)
// or -YYYYMMDD (Anthropic), and returns name unchanged when it has none.
func ModelWithoutDate(name string) string {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	n := len(name)
	if n > 11 && name[n-11] == '-' && name[n-6] == '-' && name[n-3] == '-' &&
		digits(name[n-10:n-6]) && digits(name[n-5:n-3]) && digits(name[n-2:]) {
		return name[:n-11]
	}
	if n > 9 && name[n-9] == '-' && digits(name[n-8:]) {
		return name[:n-9]
	}
	return name
}

// Window returns the period of b that holds now: [start, end) in b's time
// zone, computed with the calendar (a day of a DST change is 23 or 25
// hours). A total budget's window is [zero time, zero time): it never
// ends.
func (b *Budget) Window(now time.Time) (start, end time.Time) {
	loc, err := time.LoadLocation(b.Timezone)
	if err != nil {
		loc = time.UTC // Validate refuses such budgets
	}
	t := now.In(loc)
	y, m, d := t.Date()
	switch b.Period {
	case PeriodDay:
		start, end = midnight(y, m, d, loc), midnight(y, m, d+1, loc)
	case PeriodWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		start, end = midnight(y, m, d-back, loc), midnight(y, m, d-back+7, loc)
	case PeriodMonth:
		start, end = midnight(y, m, 1, loc), midnight(y, m+1, 1, loc)
	}
	return start, end
}

// midnight returns the first instant of the day y-m-d (normalized as
// time.Date does) in loc. Where a DST change skips midnight itself
// (America/Havana, America/Santiago), time.Date answers an instant of the
// day before; the day then starts at the change.
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if _, _, want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Date(); t.Day() != want {
		_, t = t.ZoneBounds()
	}
	return t
}

// Filter returns the filter of the events whose cost counts against b in
// the window [start, end). A model scope is not a Filter field: SpentNUSD
// groups by model instead.
func (b *Budget) Filter(start, end time.Time) Filter {
	f := Filter{Org: []string{b.Org}, Since: start, Until: end}
	if b.Project != "" {
		f.Project = []string{b.Project}
	}
	if b.ActorID != "" {
		f.ActorID = []string{b.ActorID}
	}
	return f
}

// SpentNUSD returns the stored cost that counts against b in [start, end),
// read through a's rollups.
func SpentNUSD(ctx context.Context, a Aggregator, b *Budget, start, end time.Time) (int64, error) {
	buckets, err := a.Aggregate(ctx, b.Filter(start, end), DimModel)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, k := range buckets {
		if b.Model == "" || ModelMatches(b.Model, k.Key) {
			sum = AddSat(sum, USDToNano(k.CostUSD))
		}
	}
	return sum, nil
}

// USDToNano converts dollars to nano-dollars, rounding to the nearest and
// saturating; NaN and negative amounts are 0.
func USDToNano(usd float64) int64 {
	if !(usd > 0) {
		return 0
	}
	return Saturate(math.Round(usd * NanoUSD))
}

// FormatUSD formats nano-dollars as dollars with cents: $50.00, or with
// more digits when a cent would hide the amount: $0.0042.
func FormatUSD(nusd int64) string {
	usd := float64(nusd) / NanoUSD
	if nusd != 0 && nusd%(NanoUSD/100) != 0 && math.Abs(usd) < 1 {
		return fmt.Sprintf("$%.4f", usd)
	}
	return fmt.Sprintf("$%.2f", usd)
}

// BudgetState is a budget in the period that holds a moment: what was
// spent (stored cost), what open reservations hold, and when it resets
// (zero for a total budget).
type BudgetState struct {
	Budget       Budget
	Start, End   time.Time
	SpentNUSD    int64
	ReservedNUSD int64
}

// UsedNUSD is spent plus reserved.
func (s *BudgetState) UsedNUSD() int64 { return AddSat(s.SpentNUSD, s.ReservedNUSD) }

// RemainingNUSD is what is left of the limit, never below 0.
func (s *BudgetState) RemainingNUSD() int64 { return max(0, s.Budget.LimitNUSD-s.UsedNUSD()) }

// Admits reports whether a reservation of amount fits: the budget is not
// used up and the amount fits in what remains.
func (s *BudgetState) Admits(amount int64) bool {
	used := s.UsedNUSD()
	return used < s.Budget.LimitNUSD && AddSat(used, amount) <= s.Budget.LimitNUSD
}

// AdmitsAllowance reports whether an allowance of amount fits with room to
// spare: after it, the budget is at most half used and below its warning
// threshold. So an allowance never records an alert, and the allowances
// held against a budget together never hold more than half its limit: a
// call that asks for itself is refused because of them only when it is
// over half the limit or the budget's spend grew past half meanwhile.
func (s *BudgetState) AdmitsAllowance(amount int64) bool {
	after := AddSat(s.UsedNUSD(), amount)
	return after <= s.Budget.LimitNUSD/2 && !s.Warned(after)
}

// Warned reports whether used reached the budget's warning threshold.
func (s *BudgetState) Warned(used int64) bool {
	w := s.Budget.WarnAt
	return w > 0 && float64(used)*100 >= float64(s.Budget.LimitNUSD)*float64(w)
}

// Reservation asks to hold AmountNUSD against every budget that applies to
// a call, until the call settles or TTL passes. ID is the id the call's
// event will carry: once that event is stored, its cost is in the rollups
// and the reservation stops counting.
//
// An Allowance is a reservation a proxy takes ahead of calls, not for one:
// it admits calls of the same org, project, actor and model against it
// without asking, and each call, when it ends, draws what it took from the
// allowance into a settled reservation of its own (Budgets.Draw). An
// allowance is granted only with room to spare (BudgetState.AdmitsAllowance)
// and holds at most until the end of the period of every budget it applies
// to; refusing one is no refusal of a call and records no alert.
type Reservation struct {
	ID         string
	Org        string
	Project    string
	ActorID    string
	Model      string
	AmountNUSD int64
	TTL        time.Duration
	Allowance  bool
}

// minAllowanceTTL is the shortest allowance granted: one that would end
// sooner, at the end of a period, is not worth a proxy's asking.
const minAllowanceTTL = time.Second

// MaxReservationTTL bounds how long a reservation may hold budget.
const MaxReservationTTL = 24 * time.Hour

// MaxHeldReservations bounds the reservations (one per budget a call
// reserves against) one org may hold at once, so that one org's tokens
// cannot fill the store's ledger and slow every other org's checks. A
// reservation beyond it is refused (ERATELIMIT), which the LLM proxy
// turns into a refused call.
const MaxHeldReservations = 10000

// SettledTTL is how long a settled reservation keeps counting while its
// event is on its way to the store.
const SettledTTL = 15 * time.Minute

// CheckReservationID checks the id of a reservation or allowance, naming
// field when it is empty or not one an event could carry.
func CheckReservationID(field, id string) error {
	if err := checkText(field, id, maxIDLen, true); err != nil {
		return err
	}
	if id == "" {
		return Invalid(field, "is required")
	}
	return nil
}

// Validate checks r, naming the field at fault.
func (r *Reservation) Validate() error {
	if err := CheckReservationID("id", r.ID); err != nil {
		return err
	}
	if r.Org == "" {
		return Invalid("org", "is required")
	}
	if err := checkScope("org", r.Org); err != nil {
		return err
	}
	if err := checkScope("project", r.Project); err != nil {
		return err
	}
	for _, c := range []struct{ name, v string }{{"actor_id", r.ActorID}, {"model", r.Model}} {
		if err := checkText(c.name, c.v, maxNameLen, false); err != nil {
			return err
		}
	}
	if r.AmountNUSD < 0 || r.AmountNUSD > MaxLLMCostUSD*NanoUSD {
		return Invalid("amount_usd", "must be from 0 to %d", MaxLLMCostUSD)
	}
	if r.TTL <= 0 || r.TTL > MaxReservationTTL {
		return Invalid("ttl_seconds", "must be more than 0 and at most %d", int(MaxReservationTTL.Seconds()))
	}
	return nil
}

// ReserveResult is the answer to a Reservation: the state of every budget
// that applies, before the reservation, and whether it was taken. When it
// was not, Denied indexes the first budget that refused it. TTL is how long
// a reservation taken holds: the Reservation's, or for an allowance at most
// until the first of its budgets' periods ends.
type ReserveResult struct {
	Allowed bool
	States  []BudgetState
	Denied  int
	TTL     time.Duration
}

// Budgets is the store of budgets and reservations.
//
// PutBudget creates or replaces the budget (b.Org, b.Name), validated.
// ListBudgets returns the budgets of org ("" for every org), ordered by org
// and name. DeleteBudget removes one and its reservations, returning it, or
// ENOTFOUND. BudgetStates returns the state of every budget of org ("" for
// all) at now.
//
// Reserve decides r atomically against every budget of r.Org that applies
// to it: across concurrent callers, and across processes sharing the
// database, no two reservations see the same remaining amount. It takes the
// reservation only if every budget admits it (BudgetState.Admits). Settle
// lowers the amount of the reservation (org, id) to the call's real cost and
// keeps it for at most SettledTTL more, or ends it at a cost of 0 (a call
// that cost nothing: it has nothing left to count); it never raises the
// amount nor holds it longer than the reservation would have, so a caller
// cannot pass the admission check with a small reservation and then settle
// a large one to block others. An unknown or expired reservation is no
// error.
//
// Draw settles a call admitted under the allowance (org, allowance): in
// each budget of the allowance it lowers the allowance by what the call
// took (never below 0) and holds the call's cost, at most what it moved,
// as a settled reservation (org, id) of the allowance's period, for at
// most SettledTTL and never past the allowance's end there. The allowance
// remembers the calls that drew from it for as long as it lives: a draw
// sent again (a client's retry after a lost answer), even after the call's
// event was stored, moves nothing. A draw never raises what the two hold
// together. An unknown or expired allowance is no error: the
// call's period is over there, or it outlived its reservation, as a
// reservation of its own would have.
//
// A reservation counts in ReservedNUSD while it is not expired, was made in
// the budget's current period, and no event (org, id) is stored: once the
// event is, its cost is in SpentNUSD instead, so it never counts twice.
type Budgets interface {
	PutBudget(ctx context.Context, b Budget) (Budget, error)
	ListBudgets(ctx context.Context, org string) ([]Budget, error)
	DeleteBudget(ctx context.Context, org, name string) (Budget, error)
	BudgetStates(ctx context.Context, org string, now time.Time) ([]BudgetState, error)
	Reserve(ctx context.Context, r Reservation, now time.Time) (ReserveResult, error)
	Settle(ctx context.Context, org, id string, costNUSD int64, now time.Time) error
	Draw(ctx context.Context, org, allowance, id string, takenNUSD, costNUSD int64, now time.Time) error
}

// BudgetTx is one transaction of a Budgets implementation, through which
// ReserveIn decides a reservation: the one algorithm both stores run, each
// with its own SQL.
type BudgetTx interface {
	// LockBudgets returns the budgets of r.Org that may apply to r (at
	// least those that do; ReserveIn checks Applies), ordered by name, locked until the transaction ends so that no other Reserve on
	// them runs in between.
	LockBudgets(ctx context.Context, r *Reservation) ([]Budget, error)
	// ReservedNUSD sums the reservations that count against b (see
	// Budgets) at now, made at or after since.
	ReservedNUSD(ctx context.Context, b *Budget, since, now time.Time) (int64, error)
	// Hold stores r against each budget of holds, until its Expires.
	Hold(ctx context.Context, r *Reservation, holds []Hold, now time.Time) error
}

// Hold is a reservation's place in one budget: it counts there until
// Expires.
type Hold struct {
	Budget  string
	Expires time.Time
}

// ReserveIn decides r in tx: it reads each applicable budget's stored cost
// through a (after the budgets are locked, so a reservation settled and
// stored meanwhile counts at least once) and takes the reservation only if
// every budget admits it.
func ReserveIn(ctx context.Context, tx BudgetTx, a Aggregator, r Reservation, now time.Time) (ReserveResult, error) {
	if err := r.Validate(); err != nil {
		return ReserveResult{}, err
	}
	bs, err := tx.LockBudgets(ctx, &r)
	if err != nil {
		return ReserveResult{}, err
	}
	res := ReserveResult{Allowed: true, Denied: -1, TTL: r.TTL}
	holds := make([]Hold, 0, len(bs))
	for _, b := range bs {
		if !b.Applies(r.Org, r.Project, r.ActorID, r.Model) {
			continue
		}
		st, err := StateIn(ctx, tx, a, b, now)
		if err != nil {
			return ReserveResult{}, err
		}
		res.States = append(res.States, st)
		h := Hold{Budget: b.Name, Expires: now.Add(r.TTL)}
		admits := st.Admits(r.AmountNUSD)
		if r.Allowance {
			admits = st.AdmitsAllowance(r.AmountNUSD)
			if !st.End.IsZero() && st.End.Before(h.Expires) {
				// Counted in this period only, it holds no longer;
				// and the proxy admits under it only while every
				// one of its budgets' periods lasts.
				h.Expires = st.End
				res.TTL = min(res.TTL, st.End.Sub(now))
			}
		}
		holds = append(holds, h)
		if res.Allowed && (!admits || r.Allowance && res.TTL < minAllowanceTTL) {
			res.Allowed, res.Denied = false, len(res.States)-1
		}
	}
	if !res.Allowed || len(holds) == 0 {
		return res, nil
	}
	return res, tx.Hold(ctx, &r, holds, now)
}

// SpentReader is a BudgetTx that knows the stored cost itself, from a
// snapshot of the rollups it keeps in memory, so that a decision needs no
// query. The snapshot must hold every event whose reservation the
// BudgetTx no longer counts (see Budgets), so that no cost counts zero
// times.
type SpentReader interface {
	SpentNUSD(ctx context.Context, b *Budget, start, end time.Time) (int64, error)
}

// StateIn returns b's state at now: reservations read through tx, then the
// stored cost through tx when it is a SpentReader, else through a.
func StateIn(ctx context.Context, tx BudgetTx, a Aggregator, b Budget, now time.Time) (BudgetState, error) {
	st := BudgetState{Budget: b}
	st.Start, st.End = b.Window(now)
	var err error
	if st.ReservedNUSD, err = tx.ReservedNUSD(ctx, &b, st.Start, now); err != nil {
		return st, err
	}
	if sr, ok := tx.(SpentReader); ok {
		st.SpentNUSD, err = sr.SpentNUSD(ctx, &b, st.Start, st.End)
	} else {
		st.SpentNUSD, err = SpentNUSD(ctx, a, &b, st.Start, st.End)
	}
	return st, err
}
