package llm_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/wire"
)

// countingTrail passes reservations and settlements to the trail and
// keeps what was asked; once blocked, Reserve waits until its context
// ends, as a trail that does not answer.
type countingTrail struct {
	llm.BudgetChecker
	mu       sync.Mutex
	reserved []wire.ReserveRequest // answered
	settled  []wire.SettleRequest
	blocked  bool
}

func (c *countingTrail) Reserve(ctx context.Context, req wire.ReserveRequest) (wire.ReserveResult, error) {
	c.mu.Lock()
	blocked := c.blocked
	c.mu.Unlock()
	if blocked {
		<-ctx.Done()
		return wire.ReserveResult{}, ctx.Err()
	}
	res, err := c.BudgetChecker.Reserve(ctx, req)
	c.mu.Lock()
	c.reserved = append(c.reserved, req)
	c.mu.Unlock()
	return res, err
}

func (c *countingTrail) Settle(ctx context.Context, req wire.SettleRequest) error {
	err := c.BudgetChecker.Settle(ctx, req)
	c.mu.Lock()
	c.settled = append(c.settled, req)
	c.mu.Unlock()
	return err
}

func (c *countingTrail) reserves() []wire.ReserveRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wire.ReserveRequest(nil), c.reserved...)
}

// waitReserves waits until the trail answered n reservations.
func (c *countingTrail) waitReserves(t *testing.T, n int) []wire.ReserveRequest {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := c.reserves(); len(r) >= n {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trail answered %d reservations, want %d", len(c.reserves()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBudgetReserveAhead: with room under the budget, the proxy reserves
// an agent's next call of a model ahead, and that call is decided without
// asking — it goes through checked while the trail does not answer, its
// event carrying the reservation's id — and its cost counts once.
func TestBudgetReserveAhead(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t)
	putBudget(t, srv, "daily", wire.BudgetRequest{Org: "acme", LimitUSD: 1000, Period: "day"})
	trail := &countingTrail{}
	env := budgetProxy(t, srv.URL, newUpstream(t), func(bc *llm.BudgetConfig) {
		trail.BudgetChecker = bc.Trail
		bc.Trail, bc.AheadIdle = trail, time.Minute
	})
	params := chatParams("gpt-4o")
	params.MaxTokens = openai.Int(100)
	oai := openaiClient(env, ciKey)
	if _, err := oai.Chat.Completions.New(ctx, params); err != nil {
		t.Fatalf("first call: %v", err)
	}
	r := trail.waitReserves(t, 2) // the call's, and the one ahead
	if r[1].AmountUSD != r[0].AmountUSD || r[1].ActorID != r[0].ActorID || r[1].Model != r[0].Model || r[1].ID == r[0].ID {
		t.Fatalf("reserved ahead %+v after %+v, want the same amount, actor and model, another id", r[1], r[0])
	}
	trail.mu.Lock()
	trail.blocked = true
	trail.mu.Unlock()
	if _, err := oai.Chat.Completions.New(ctx, params); err != nil {
		t.Fatalf("second call, the trail not answering: %v", err)
	}
	events := capturetest.WaitEvents(t, srv.Store, llmEvents, 2)
	second := events[1]
	if l, _ := second.LLM(); l.BudgetUnchecked || second.ID != r[1].ID {
		t.Errorf("second call: event %s unchecked=%v, want the id reserved ahead (%s), checked", second.ID, l.BudgetUnchecked, r[1].ID)
	}
	trail.mu.Lock()
	trail.blocked = false
	trail.mu.Unlock()
	var cost float64
	for _, e := range events {
		l, _ := e.LLM()
		cost += l.Cost()
	}
	// Once every reservation is settled or released and the events are
	// stored, the two calls count once each, as spend.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := budgetState(t, srv, "daily")
		if math.Abs(st.SpentUSD-cost) < 1e-9 && st.ReservedUSD <= r[0].AmountUSD+1e-9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: spent $%g reserved $%g, want $%g spent and at most one reservation ahead ($%g)", st.SpentUSD, st.ReservedUSD, cost, r[0].AmountUSD)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBudgetReleaseAhead: a reservation taken ahead that no call takes
// is released after AheadIdle, and WaitSettled releases the rest.
func TestBudgetReleaseAhead(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t)
	putBudget(t, srv, "daily", wire.BudgetRequest{Org: "acme", LimitUSD: 1000, Period: "day"})
	trail := &countingTrail{}
	env := budgetProxy(t, srv.URL, newUpstream(t), func(bc *llm.BudgetConfig) {
		trail.BudgetChecker = bc.Trail
		bc.Trail, bc.AheadIdle = trail, 200*time.Millisecond
	})
	params := chatParams("gpt-4o")
	params.MaxTokens = openai.Int(100)
	oai := openaiClient(env, ciKey)
	if _, err := oai.Chat.Completions.New(ctx, params); err != nil {
		t.Fatal(err)
	}
	ahead := trail.waitReserves(t, 2)[1]
	capturetest.WaitEvents(t, srv.Store, llmEvents, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		trail.mu.Lock()
		var released bool
		for _, s := range trail.settled {
			released = released || (s.ID == ahead.ID && s.CostUSD == 0)
		}
		trail.mu.Unlock()
		st := budgetState(t, srv, "daily")
		if released && st.ReservedUSD == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reservation %s taken ahead: released=%v, budget reserved $%g; want it released and nothing reserved", ahead.ID, released, st.ReservedUSD)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBudgetNoAheadNearLimit: with room for fewer than ten more calls'
// worst cases, nothing is reserved ahead: every call asks the trail, so no
// reservation held for a call not made refuses another agent's near the
// limit.
func TestBudgetNoAheadNearLimit(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t)
	trail := &countingTrail{}
	env := budgetProxy(t, srv.URL, newUpstream(t), func(bc *llm.BudgetConfig) {
		trail.BudgetChecker = bc.Trail
		bc.Trail = trail
	})
	const limit = 0.05
	putBudget(t, srv, "daily", wire.BudgetRequest{Org: "acme", LimitUSD: limit, Period: "day"})
	params := chatParams("gpt-4o")
	params.MaxTokens = openai.Int(1000)
	oai := openaiClient(env, ciKey)
	for i := range 2 {
		if _, err := oai.Chat.Completions.New(ctx, params); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		capturetest.WaitEvents(t, srv.Store, llmEvents, i+1)
	}
	r := trail.reserves()
	if len(r) == 0 || aheadRoom*r[0].AmountUSD <= limit {
		t.Fatalf("reservations %+v: the test needs a worst case over a tenth of the $%g limit", r, limit)
	}
	if len(r) != 2 || r[0].ID == r[1].ID {
		t.Errorf("two calls near the limit made %d reservations (%+v), want one each and none ahead", len(r), r)
	}
}

// aheadRoom is the proxy's: how many worst cases a budget must have room
// for before a reservation is taken ahead.
const aheadRoom = 10
