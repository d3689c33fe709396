package llm

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/wire"
)

// refusingTrail grants no allowance and settles nothing.
type refusingTrail struct{}

func (refusingTrail) Reserve(context.Context, wire.ReserveRequest) (wire.ReserveResult, error) {
	return wire.ReserveResult{}, nil
}
func (refusingTrail) Settle(context.Context, wire.SettleRequest) error { return nil }

// TestAllowanceScopesBounded: however many agents call, the proxy keeps
// allowance state for at most maxAllowanceScopes of them; the others ask
// for each call.
func TestAllowanceScopesBounded(t *testing.T) {
	b, err := newBudgeter(BudgetConfig{Trail: refusingTrail{}}, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * maxAllowanceScopes {
		b.want(scopeKey{org: "acme", actor: fmt.Sprint("agent-", i), model: "gpt-4o"}, 1000)
	}
	b.closeAllowances()
	b.settling.Wait()
	b.allowances.mu.Lock()
	defer b.allowances.mu.Unlock()
	if n := len(b.allowances.scopes); n > maxAllowanceScopes {
		t.Errorf("%d scopes kept for %d agents, want at most %d", n, 3*maxAllowanceScopes, maxAllowanceScopes)
	}
}

// TestAllowancesNeedSettledTTL: a proxy whose reservations hold longer
// than agenttrail.SettledTTL uses no allowances, whose lowering would cut
// its calls' holds to that.
func TestAllowancesNeedSettledTTL(t *testing.T) {
	for _, c := range []struct {
		ttl  time.Duration
		want bool
	}{{0, false}, {15 * time.Minute, false}, {time.Hour, true}} {
		b, err := newBudgeter(BudgetConfig{Trail: refusingTrail{}, TTL: c.ttl}, slog.New(slog.DiscardHandler), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		if b.cfg.NoAllowances != c.want {
			t.Errorf("TTL %v: NoAllowances = %v, want %v", c.ttl, b.cfg.NoAllowances, c.want)
		}
	}
}
