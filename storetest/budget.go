package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// What the suite pins down about agenttrail.Budgets:
//   - Spent is the stored cost of the budget's scope in its calendar period
//     in its time zone, exact to the nano-dollar at cent amounts, also when
//     the zone is not a whole number of hours from UTC (BudgetPeriods).
//   - A reservation counts until its event is stored, then only the event
//     does; settling replaces its amount; expired ones count nothing
//     (BudgetReserve).
//   - Concurrent Reserve calls never admit more than the limit
//     (BudgetConcurrent).
//   - An allowance is granted only with as much room again left after it
//     and below the warning threshold, holds at most until its period
//     ends, and a call drawing from it moves its share into a settled
//     reservation of its own without raising what the two hold
//     (BudgetAllowance).

// costEvent is an llm-proxy event of org with the given id, time, scope and
// cost, ready to append.
func costEvent(t testing.TB, org, id string, at time.Time, actor, model string, usd float64) agenttrail.Event {
	t.Helper()
	e := agenttrail.Event{
		ID: id, Time: at, ActorType: agenttrail.ActorAgent, ActorID: actor, Source: agenttrail.SourceLLM,
		Action: "chat.completions", Result: agenttrail.ResultSuccess, Org: org,
	}
	if err := e.SetLLM(agenttrail.LLM{Model: model, CostUSD: &usd}); err != nil {
		t.Fatal(err)
	}
	e.Normalize(at, org)
	if err := e.Validate(at); err != nil {
		t.Fatal(err)
	}
	return e
}

func usd(v float64) int64 { return agenttrail.USDToNano(v) }

func testBudgetCRUD(t *testing.T, s agenttrail.Store) {
	bs, ctx := as[agenttrail.Budgets](t, s), t.Context()
	at := Base().Truncate(time.Microsecond)
	put := func(b agenttrail.Budget) {
		t.Helper()
		if _, err := bs.PutBudget(ctx, b); err != nil {
			t.Fatalf("PutBudget(%s/%s) = %v", b.Org, b.Name, err)
		}
	}
	put(agenttrail.Budget{Name: "daily", Org: "a", LimitNUSD: usd(50), Period: agenttrail.PeriodDay, WarnAt: 80, UpdatedAt: at, UpdatedBy: "root"})
	put(agenttrail.Budget{Name: "gpt", Org: "a", Model: "gpt-4o", ActorID: "bot", Project: "p", LimitNUSD: usd(0.1), Period: agenttrail.PeriodTotal, Timezone: "Europe/Berlin", UpdatedAt: at})
	put(agenttrail.Budget{Name: "daily", Org: "b", LimitNUSD: usd(1), Period: agenttrail.PeriodMonth, UpdatedAt: at})
	// Replacing keeps one row.
	put(agenttrail.Budget{Name: "daily", Org: "a", LimitNUSD: usd(60), Period: agenttrail.PeriodWeek, WarnAt: 90, UpdatedAt: at, UpdatedBy: "root"})

	got, err := bs.ListBudgets(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []agenttrail.Budget{
		{Name: "daily", Org: "a", LimitNUSD: usd(60), Period: agenttrail.PeriodWeek, Timezone: "UTC", WarnAt: 90, UpdatedAt: at, UpdatedBy: "root"},
		{Name: "gpt", Org: "a", Model: "gpt-4o", ActorID: "bot", Project: "p", LimitNUSD: usd(0.1), Period: agenttrail.PeriodTotal, Timezone: "Europe/Berlin", UpdatedAt: at},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListBudgets(a) =\n%v\nwant\n%v", got, want)
	}
	if all, _ := bs.ListBudgets(ctx, ""); len(all) != 3 {
		t.Fatalf("ListBudgets(\"\") = %d budgets, want 3", len(all))
	}
	if _, err := bs.DeleteBudget(ctx, "b", "gpt"); agenttrail.ErrorCode(err) != agenttrail.ENOTFOUND {
		t.Fatalf("DeleteBudget(b, gpt) = %v, want ENOTFOUND (it is org a's)", err)
	}
	if d, err := bs.DeleteBudget(ctx, "a", "gpt"); err != nil || d.Model != "gpt-4o" {
		t.Fatalf("DeleteBudget(a, gpt) = %v, %v", d, err)
	}
	if rest, _ := bs.ListBudgets(ctx, "a"); len(rest) != 1 {
		t.Fatalf("after delete, ListBudgets(a) = %v", rest)
	}
	for _, c := range []struct {
		b     agenttrail.Budget
		field string
	}{
		{agenttrail.Budget{Name: "", Org: "a", LimitNUSD: 1, Period: "day"}, "name"},
		{agenttrail.Budget{Name: "x", Org: "a", LimitNUSD: 1, Period: "year"}, "period"},
		{agenttrail.Budget{Name: "x", Org: "a", LimitNUSD: 0, Period: "day"}, "limit_usd"},
		{agenttrail.Budget{Name: "x", Org: "a", LimitNUSD: 1, Period: "day", Timezone: "Mars/Olympus"}, "timezone"},
		{agenttrail.Budget{Name: "x", Org: "a", LimitNUSD: 1, Period: "day", WarnAt: 101}, "warn_at"},
	} {
		var ae *agenttrail.Error
		if _, err := bs.PutBudget(ctx, c.b); !errors.As(err, &ae) || ae.Code != agenttrail.EINVALID || ae.Field != c.field {
			t.Errorf("PutBudget(%+v) = %v, want EINVALID naming %s", c.b, err, c.field)
		}
	}
}

func testBudgetPeriods(t *testing.T, s agenttrail.Store) {
	bs, ctx := as[agenttrail.Budgets](t, s), t.Context()
	// Kolkata is UTC+5:30: its days start on a half hour of UTC, inside an
	// hourly rollup bucket.
	kol, _ := time.LoadLocation("Asia/Kolkata")
	day0 := time.Date(2025, 3, 5, 0, 0, 0, 0, kol)
	for _, b := range []agenttrail.Budget{
		{Name: "day", Org: "o", LimitNUSD: usd(10), Period: agenttrail.PeriodDay, Timezone: "Asia/Kolkata"},
		{Name: "total", Org: "o", LimitNUSD: usd(10), Period: agenttrail.PeriodTotal},
		{Name: "bot-gpt", Org: "o", ActorID: "bot", Model: "gpt", LimitNUSD: usd(10), Period: agenttrail.PeriodWeek, Timezone: "Asia/Kolkata"},
	} {
		if _, err := bs.PutBudget(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	AppendAll(t, s, []agenttrail.Event{
		costEvent(t, "o", "before", day0.Add(-time.Minute), "bot", "gpt", 1.01),    // the day before, same week
		costEvent(t, "o", "first", day0, "bot", "gpt", 0.02),                       // first instant of the day
		costEvent(t, "o", "other", day0.Add(20*time.Minute), "bot", "claude", 0.3), // another model
		costEvent(t, "o", "last", day0.Add(24*time.Hour-time.Microsecond), "eve", "gpt", 0.07),
		costEvent(t, "o", "next", day0.Add(24*time.Hour), "bot", "gpt", 2),
		costEvent(t, "x", "elsewhere", day0.Add(time.Hour), "bot", "gpt", 5), // another org
	}, 10)
	check := func(now time.Time, want map[string]int64, wantEnd map[string]time.Time) {
		t.Helper()
		sts, err := bs.BudgetStates(ctx, "o", now)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sts {
			if st.SpentNUSD != want[st.Budget.Name] {
				t.Errorf("at %v: budget %s spent %s, want %s", now, st.Budget.Name, agenttrail.FormatUSD(st.SpentNUSD), agenttrail.FormatUSD(want[st.Budget.Name]))
			}
			if e, ok := wantEnd[st.Budget.Name]; ok && !st.End.Equal(e) {
				t.Errorf("at %v: budget %s resets at %v, want %v", now, st.Budget.Name, st.End, e)
			}
		}
	}
	week := time.Date(2025, 3, 3, 0, 0, 0, 0, kol).Add(7 * 24 * time.Hour) // Monday 10 March, Kolkata
	check(day0.Add(time.Hour),
		map[string]int64{"day": usd(0.39), "total": usd(3.4), "bot-gpt": usd(3.03)},
		map[string]time.Time{"day": day0.Add(24 * time.Hour), "total": {}, "bot-gpt": week})
	// One nanosecond before midnight in Kolkata, then midnight: the day
	// budget starts again, the total one never does.
	check(day0.Add(24*time.Hour-time.Nanosecond), map[string]int64{"day": usd(0.39), "total": usd(3.4), "bot-gpt": usd(3.03)}, nil)
	check(day0.Add(24*time.Hour), map[string]int64{"day": usd(2), "total": usd(3.4), "bot-gpt": usd(3.03)}, nil)
	check(week, map[string]int64{"day": 0, "total": usd(3.4), "bot-gpt": 0}, nil)
}

func testBudgetReserve(t *testing.T, s agenttrail.Store) {
	bs, ctx := as[agenttrail.Budgets](t, s), t.Context()
	now := Base().Truncate(time.Microsecond)
	if _, err := bs.PutBudget(ctx, agenttrail.Budget{Name: "cap", Org: "o", LimitNUSD: usd(1), Period: agenttrail.PeriodDay}); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.PutBudget(ctx, agenttrail.Budget{Name: "p-only", Org: "o", Project: "p", LimitNUSD: usd(0.5), Period: agenttrail.PeriodDay}); err != nil {
		t.Fatal(err)
	}
	reserve := func(id, project string, amount float64, ttl time.Duration) agenttrail.ReserveResult {
		t.Helper()
		res, err := bs.Reserve(ctx, agenttrail.Reservation{ID: id, Org: "o", Project: project, ActorID: "bot", Model: "gpt", AmountNUSD: usd(amount), TTL: ttl}, now)
		if err != nil {
			t.Fatalf("Reserve(%s) = %v", id, err)
		}
		return res
	}
	state := func(name string) agenttrail.BudgetState {
		t.Helper()
		sts, err := bs.BudgetStates(ctx, "o", now)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sts {
			if st.Budget.Name == name {
				return st
			}
		}
		t.Fatalf("no budget %s", name)
		return agenttrail.BudgetState{}
	}
	if r := reserve("c1", "", 0.6, time.Hour); !r.Allowed || len(r.States) != 1 {
		t.Fatalf("Reserve(c1, $0.60 of $1) = %+v, want allowed against one budget", r)
	}
	if r := reserve("c2", "", 0.5, time.Hour); r.Allowed || r.States[r.Denied].Budget.Name != "cap" || r.States[r.Denied].ReservedNUSD != usd(0.6) {
		t.Fatalf("Reserve(c2, $0.50 with $0.60 reserved of $1) = %+v, want denied by cap", r)
	}
	// The project budget applies too and refuses what cap would allow.
	if r := reserve("c3", "p", 0.4, time.Hour); !r.Allowed || len(r.States) != 2 {
		t.Fatalf("Reserve(c3 in p, $0.40) = %+v, want allowed against two budgets", r)
	}
	if got := state("cap").ReservedNUSD; got != usd(1) {
		t.Fatalf("cap reserved %s, want $1.00", agenttrail.FormatUSD(got))
	}
	// At the limit, even a call of unknown (zero) worst case is refused.
	if r := reserve("c4", "", 0, time.Hour); r.Allowed {
		t.Fatalf("Reserve(c4, $0) at the limit = allowed")
	}
	// Settling c1 to its real cost frees the rest.
	if err := bs.Settle(ctx, "o", "c1", usd(0.1), now); err != nil {
		t.Fatal(err)
	}
	if got := state("cap"); got.ReservedNUSD != usd(0.5) || got.SpentNUSD != 0 {
		t.Fatalf("after settle: cap spent %d reserved %d, want 0 and $0.50", got.SpentNUSD, got.ReservedNUSD)
	}
	// c1's event lands: its cost is spent, and the reservation no longer
	// counts, so nothing is counted twice.
	AppendAll(t, s, []agenttrail.Event{costEvent(t, "o", "c1", now, "bot", "gpt", 0.1)}, 1)
	if got := state("cap"); got.SpentNUSD != usd(0.1) || got.ReservedNUSD != usd(0.4) {
		t.Fatalf("after c1's event: cap spent %s reserved %s, want $0.10 and $0.40", agenttrail.FormatUSD(got.SpentNUSD), agenttrail.FormatUSD(got.ReservedNUSD))
	}
	// An event of another org with the same id does not end c3's hold.
	AppendAll(t, s, []agenttrail.Event{costEvent(t, "other", "c3", now, "bot", "gpt", 0)}, 1)
	if got := state("cap").ReservedNUSD; got != usd(0.4) {
		t.Fatalf("after another org's event c3: cap reserved %s, want $0.40", agenttrail.FormatUSD(got))
	}
	// Expired reservations count nothing.
	if r := reserve("short", "", 0.3, time.Second); !r.Allowed {
		t.Fatalf("Reserve(short, $0.30) = %+v, want allowed", r)
	}
	now = now.Add(2 * time.Second)
	if got := state("cap").ReservedNUSD; got != usd(0.4) {
		t.Fatalf("after expiry: cap reserved %s, want $0.40", agenttrail.FormatUSD(got))
	}
	// Deleting a budget releases its reservations.
	if _, err := bs.DeleteBudget(ctx, "o", "p-only"); err != nil {
		t.Fatal(err)
	}
	if r := reserve("c5", "p", 0.5, time.Hour); !r.Allowed || len(r.States) != 1 {
		t.Fatalf("Reserve(c5 in p) after deleting p-only = %+v, want allowed against cap only", r)
	}
	for _, bad := range []agenttrail.Reservation{
		{ID: "", Org: "o", TTL: time.Hour},
		{ID: "x", Org: "o", TTL: 0},
		{ID: "x", Org: "o", AmountNUSD: -1, TTL: time.Hour},
	} {
		if _, err := bs.Reserve(ctx, bad, now); agenttrail.ErrorCode(err) != agenttrail.EINVALID {
			t.Errorf("Reserve(%+v) = %v, want EINVALID", bad, err)
		}
	}
}

func testBudgetConcurrent(t *testing.T, s agenttrail.Store) {
	bs, ctx := as[agenttrail.Budgets](t, s), t.Context()
	now := Base()
	if _, err := bs.PutBudget(ctx, agenttrail.Budget{Name: "cap", Org: "o", LimitNUSD: usd(0.1), Period: agenttrail.PeriodTotal}); err != nil {
		t.Fatal(err)
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			res, err := bs.Reserve(ctx, agenttrail.Reservation{ID: fmt.Sprint("r", i), Org: "o", AmountNUSD: usd(0.007), TTL: time.Hour}, now)
			if err != nil {
				t.Error(err)
				return
			}
			if res.Allowed {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 14 { // 14 × $0.007 = $0.098
		t.Fatalf("concurrent Reserve admitted %d × $0.007 against $0.10, want 14", got)
	}
}

func testBudgetAllowance(t *testing.T, s agenttrail.Store) {
	bs, ctx := as[agenttrail.Budgets](t, s), t.Context()
	now := Base().Truncate(time.Microsecond)
	day := agenttrail.Budget{Name: "day", Org: "o", LimitNUSD: usd(1), Period: agenttrail.PeriodDay, Timezone: "Asia/Kolkata"}
	month := agenttrail.Budget{Name: "month", Org: "o", LimitNUSD: usd(10), Period: agenttrail.PeriodMonth, Timezone: "Asia/Kolkata"}
	for _, b := range []agenttrail.Budget{day, month} {
		if _, err := bs.PutBudget(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	_, end := day.Window(now)
	reserve := func(id string, amount float64, allowance bool, at time.Time) agenttrail.ReserveResult {
		t.Helper()
		res, err := bs.Reserve(ctx, agenttrail.Reservation{ID: id, Org: "o", ActorID: "bot", Model: "gpt", AmountNUSD: usd(amount), TTL: time.Hour, Allowance: allowance}, at)
		if err != nil {
			t.Fatalf("Reserve(%s) = %v", id, err)
		}
		return res
	}
	state := func(name string, at time.Time) agenttrail.BudgetState {
		t.Helper()
		sts, err := bs.BudgetStates(ctx, "o", at)
		if err != nil || len(sts) != 2 {
			t.Fatalf("BudgetStates = %v, %v", sts, err)
		}
		if sts[0].Budget.Name == name {
			return sts[0]
		}
		return sts[1]
	}
	reserved := func(at time.Time) int64 { t.Helper(); return state("day", at).ReservedNUSD }
	wantReserved := func(want float64, after string) {
		t.Helper()
		if got := reserved(now); got != usd(want) {
			t.Fatalf("day reserved %s %s, want %s", agenttrail.FormatUSD(got), after, agenttrail.FormatUSD(usd(want)))
		}
	}
	draw := func(allowance, id string, taken, cost float64) {
		t.Helper()
		if err := bs.Draw(ctx, "o", allowance, id, usd(taken), usd(cost), now); err != nil {
			t.Fatalf("Draw(%s from %s) = %v", id, allowance, err)
		}
	}

	if r := reserve("a1", 0.3, true, now); !r.Allowed || r.TTL != time.Hour {
		t.Fatalf("allowance a1 of $0.30 of $1 = %+v, want granted for the hour asked", r)
	}
	// $0.25 more would leave the day budget over half used: no allowance,
	// though a reservation of one call that size fits.
	if r := reserve("a2", 0.25, true, now); r.Allowed {
		t.Fatalf("allowance a2 of $0.25 with $0.30 held of $1 = granted, want refused: over half the limit")
	}
	// $0.15 more stays under half, but reaches a warning threshold of 40%.
	day.WarnAt = 40
	if _, err := bs.PutBudget(ctx, day); err != nil {
		t.Fatal(err)
	}
	if r := reserve("a3", 0.15, true, now); r.Allowed {
		t.Fatalf("allowance a3 reaching the 40%% warning = granted, want refused")
	}
	wantReserved(0.3, "after refused allowances")
	// A call that took $0.10 of a1 and cost $0.04 holds $0.04 of its own.
	draw("a1", "c1", 0.1, 0.04)
	wantReserved(0.24, "after c1 drew $0.10 costing $0.04")
	// The same draw again (a retry after a lost answer) moves nothing.
	draw("a1", "c1", 0.1, 0.04)
	wantReserved(0.24, "after c1's draw came twice")
	// Its event lands: its cost is spent, and its hold ends.
	AppendAll(t, s, []agenttrail.Event{costEvent(t, "o", "c1", now, "bot", "gpt", 0.04)}, 1)
	if st := state("day", now); st.SpentNUSD != usd(0.04) || st.ReservedNUSD != usd(0.2) {
		t.Fatalf("after c1's event: spent %s reserved %s, want $0.04 and a1's $0.20", agenttrail.FormatUSD(st.SpentNUSD), agenttrail.FormatUSD(st.ReservedNUSD))
	}
	// A decision a second later prunes the holds whose event is stored;
	// c1's draw arriving again after that still moves nothing.
	reserve("r0", 0, false, now.Add(time.Second))
	draw("a1", "c1", 0.1, 0.04)
	wantReserved(0.2, "after c1's draw came again once its event was stored")
	// Copies of one draw at once move its share once.
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if err := bs.Draw(ctx, "o", "a1", "c9", usd(0.02), usd(0.01), now); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	wantReserved(0.19, "after 40 copies of c9's draw ($0.02 taken, $0.01 cost) at once")
	if err := bs.Settle(ctx, "o", "c9", 0, now); err != nil { // c9's hold ends
		t.Fatal(err)
	}
	// A cost over what a call took holds only what it took: a draw never
	// raises what is held.
	draw("a1", "c2", 0.05, 0.5)
	wantReserved(0.18, "after c2 drew $0.05 costing $0.50")
	// Taking more than is left moves what is left.
	draw("a1", "c3", 1, 1)
	wantReserved(0.18, "after c3 drew more than a1 held")
	// a1 is used up: another draw moves and holds nothing.
	draw("a1", "c4", 0.1, 0.1)
	draw("gone", "c5", 0.1, 0.1)
	wantReserved(0.18, "after draws from an empty and an unknown allowance")
	// Lowered to what its calls still owe, then released: a settlement
	// lowers an allowance, and at $0 ends it.
	if r := reserve("a6", 0.1, true, now); !r.Allowed {
		t.Fatalf("allowance a6 = %+v, want granted", r)
	}
	for _, owed := range []float64{0.03, 0} {
		if err := bs.Settle(ctx, "o", "a6", usd(owed), now); err != nil {
			t.Fatal(err)
		}
		if got := reserved(now); got != usd(0.18+owed) {
			t.Fatalf("reserved %s after a6 was lowered to $%.2f, want $%.2f", agenttrail.FormatUSD(got), owed, 0.18+owed)
		}
	}
	if err := bs.Draw(ctx, "o", "a1", "a1", usd(0.1), usd(0.1), now); agenttrail.ErrorCode(err) != agenttrail.EINVALID {
		t.Errorf("Draw of an allowance into itself = %v, want EINVALID", err)
	}

	// Half an hour before the day ends in Kolkata, an allowance holds in
	// the day budget only until then, and in the month budget for the
	// hour asked: each counts it in its own period and in no other.
	late := end.Add(-30 * time.Minute)
	if r := reserve("a4", 0.01, true, late); !r.Allowed || r.TTL != 30*time.Minute {
		t.Fatalf("allowance a4 half an hour before the day ends = %+v, want granted for 30m", r)
	}
	if got := reserved(end.Add(-time.Nanosecond)); got != usd(0.01) {
		// Everything before expired an hour after now; a4 still holds.
		t.Fatalf("day reserved %s just before the day ends, want a4's $0.01", agenttrail.FormatUSD(got))
	}
	if got := reserved(end); got != 0 {
		t.Fatalf("day reserved %s as the next day starts, want 0", agenttrail.FormatUSD(got))
	}
	if got := state("month", end).ReservedNUSD; got != usd(0.01) {
		t.Fatalf("month reserved %s as the next day starts, want a4's $0.01", agenttrail.FormatUSD(got))
	}
	if r := reserve("a5", 0.01, true, end.Add(-time.Second+time.Nanosecond)); r.Allowed {
		t.Fatalf("allowance a5 under a second before the day ends = granted, want refused: it could admit next to nothing")
	}
}
