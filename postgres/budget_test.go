package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
)

// TestReserveTwoProcesses reserves concurrently through two Stores on one
// schema, as two servers sharing a database do: the row locks, not a
// process's own state, keep them from admitting more than the limit.
func TestReserveTwoProcesses(t *testing.T) {
	testDSN(t)
	a, dsn := openStore(t)
	b, err := postgres.Open(context.Background(), dsn, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := a.PutBudget(ctx, agenttrail.Budget{Name: "cap", Org: "o", LimitNUSD: agenttrail.USDToNano(0.1), Period: agenttrail.PeriodTotal}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		s := []*postgres.Store{a, b}[i%2]
		wg.Go(func() {
			res, err := s.Reserve(ctx, agenttrail.Reservation{ID: fmt.Sprint("r", i), Org: "o", AmountNUSD: agenttrail.USDToNano(0.007), TTL: time.Hour}, now)
			if err != nil {
				t.Error(err)
			} else if res.Allowed {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 14 { // 14 × $0.007 = $0.098
		t.Fatalf("two stores admitted %d × $0.007 against $0.10, want 14", got)
	}
}

// TestSettleToZeroEnds: a reservation settled to $0 (a call that cost
// nothing) ends at once, so it takes none of the org's
// MaxHeldReservations places for the quarter hour a settled one keeps; one
// settled to a cost keeps its row.
func TestSettleToZeroEnds(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	if _, err := s.PutBudget(ctx, agenttrail.Budget{Name: "cap", Org: "o", LimitNUSD: agenttrail.USDToNano(10), Period: agenttrail.PeriodTotal}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, id := range []string{"paid", "released"} {
		if res, err := s.Reserve(ctx, agenttrail.Reservation{ID: id, Org: "o", AmountNUSD: agenttrail.USDToNano(1), TTL: time.Hour}, now); err != nil || !res.Allowed {
			t.Fatalf("Reserve(%s) = %+v, %v", id, res, err)
		}
	}
	if err := s.Settle(ctx, "o", "paid", agenttrail.USDToNano(0.25), now); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, "o", "released", 0, now); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, dsn, "SELECT count(*) FROM budget_reservations WHERE id = 'released'"); got != 0 {
		t.Errorf("a reservation settled to $0 kept %d rows, want 0", got)
	}
	if got := queryInt(t, dsn, "SELECT amount_nusd FROM budget_reservations WHERE id = 'paid'"); got != agenttrail.USDToNano(0.25) {
		t.Errorf("a reservation settled to $0.25 holds %d nano-USD, want %d", got, agenttrail.USDToNano(0.25))
	}
}
