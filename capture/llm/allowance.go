package llm

import (
	"context"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// Allowances take the budget check off a call's path (docs/architecture.md,
// "Budgets"). After a call of an org, project, actor and model was reserved,
// the proxy asks the trail, in the background, for an allowance: room for
// allowanceCalls more calls of that size, held like a reservation. The
// next calls of that scope are admitted against it without asking; each,
// when it ends, draws what it took into a settled reservation of its own
// (Budgets.Draw). The trail grants one only while each of its budgets
// stays at most half used and below its warning threshold, and holds it
// in each budget at most until that budget's period ends; the proxy admits
// under it for at most allowanceUse (2 s) and within every period, then
// retires it: lowers it at once to what its calls in flight took, and
// ends it once they have drawn (a share whose draw failed stays held until
// it expires). Past half a budget no allowance is granted, and every call
// asks, as without allowances: an allowance is counted before any call
// under it runs, so the overshoot bound is the same, against the budgets
// as they stood when it was granted — a budget created or lowered since
// holds the scope's calls from the next allowance, within 2 s.

const (
	// allowanceCalls sizes an allowance: this many calls of the size of
	// the one after which it is asked for.
	allowanceCalls = 32
	// allowanceUse is how long after asking the proxy admits calls under
	// an allowance: a budget created or lowered meanwhile holds this
	// scope's calls from then on.
	allowanceUse = 2 * time.Second
	// allowanceRetry is how long a scope waits to ask again after an
	// allowance was not granted or the ask failed, doubling with each
	// refusal in a row up to maxAllowanceRetry: past half a budget, its
	// scopes stop asking.
	allowanceRetry    = time.Second
	maxAllowanceRetry = time.Minute
	// maxAllowanceScopes bounds the scopes the proxy keeps allowances for.
	maxAllowanceScopes = 10000
)

// scopeKey is what a budget can tell calls apart by.
type scopeKey struct{ org, project, actor, model string }

// allowance is one granted allowance, of one scope.
type allowance struct {
	id       string
	key      scopeKey
	size     int64     // nano-dollars granted
	left     int64     // nano-dollars not yet taken by a call
	until    time.Time // calls are admitted under it only before
	inflight int       // calls admitted under it that have not drawn yet
	// owed is what the calls in flight took of it, and the calls whose
	// draw failed: it must keep holding that much.
	owed    int64
	retired bool // admits no more calls
	timer   *time.Timer
}

// scope is the allowance state of one scopeKey.
type scope struct {
	cur       *allowance
	asking    bool
	notBefore time.Time     // ask no earlier
	backoff   time.Duration // after the next refusal; 0 means allowanceRetry
}

// allowances is a budgeter's allowances, by scope.
type allowances struct {
	mu      sync.Mutex
	scopes  map[scopeKey]*scope
	sweptAt time.Time // of the scopes without an allowance, when full
	closed  bool
}

// take admits a call of amount under k's allowance when it has room and
// time left, and returns it; nil means the call must reserve.
func (b *budgeter) take(k scopeKey, amount int64) *allowance {
	now := b.now()
	as := &b.allowances
	as.mu.Lock()
	defer as.mu.Unlock()
	s := as.scopes[k]
	if s == nil || s.cur == nil {
		return nil
	}
	a := s.cur
	if !now.Before(a.until) {
		s.cur = nil
		b.retire(a)
		return nil
	}
	if a.left < amount {
		return nil
	}
	a.left -= amount
	a.inflight++
	a.owed += amount
	if a.left < a.size/2 || a.until.Sub(now) < allowanceUse/2 {
		// Ask for the next before this one runs out, so that no call
		// waits for it.
		b.askLocked(s, k, a.size, now)
	}
	return a
}

// want asks for an allowance for k, sized for calls of amount, unless k
// has one with room for such a call or is asking already.
func (b *budgeter) want(k scopeKey, amount int64) {
	now := b.now()
	as := &b.allowances
	as.mu.Lock()
	defer as.mu.Unlock()
	s := as.scopes[k]
	if s == nil {
		if as.scopes == nil {
			as.scopes = map[scopeKey]*scope{}
		}
		if len(as.scopes) >= maxAllowanceScopes {
			if now.Sub(as.sweptAt) >= time.Second {
				as.sweptAt = now
				for key, o := range as.scopes {
					if o.cur == nil && !o.asking && !now.Before(o.notBefore) {
						delete(as.scopes, key)
					}
				}
			}
			if len(as.scopes) >= maxAllowanceScopes {
				return // every call of k keeps asking for itself
			}
		}
		s = &scope{}
		as.scopes[k] = s
	}
	if s.cur != nil && s.cur.left >= amount && now.Before(s.cur.until) {
		return
	}
	b.askLocked(s, k, min(allowanceCalls*amount, agenttrail.MaxLLMCostUSD*agenttrail.NanoUSD), now)
}

// askLocked asks the trail for an allowance of size for s in the
// background, unless s asks already or may not yet. It must be called with
// the allowances' mutex held.
func (b *budgeter) askLocked(s *scope, k scopeKey, size int64, now time.Time) {
	if s.asking || now.Before(s.notBefore) || b.allowances.closed || size <= 0 {
		return
	}
	s.asking = true
	b.settling.Add(1)
	go func() {
		defer b.settling.Done()
		id := agenttrail.NewID(now)
		sent := b.now()
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
		defer cancel()
		res, err := b.cfg.Trail.Reserve(ctx, wire.ReserveRequest{
			ID: id, Org: k.org, Project: k.project, ActorID: k.actor, Model: k.model,
			// A call admitted at the end of its use holds as long
			// as one that asked for itself.
			AmountUSD: float64(size) / agenttrail.NanoUSD, TTLSeconds: int((b.cfg.TTL + allowanceUse).Seconds()), Allowance: true,
		})
		granted := err == nil && res.Allowed && len(res.Budgets) > 0 && res.TTLMillis > 0
		as := &b.allowances
		as.mu.Lock()
		defer as.mu.Unlock()
		s.asking = false
		if !granted {
			s.backoff = min(max(s.backoff, allowanceRetry), maxAllowanceRetry)
			s.notBefore, s.backoff = b.now().Add(s.backoff), 2*s.backoff
			if err != nil {
				// The answer may have been lost with the allowance
				// granted, or the ask may still be on its way:
				// release it now and once more when any decision on
				// it is long over, rather than let it hold until it
				// expires (an unknown one is no error).
				b.lower(k.org, id, 0)
				b.lowerAfter(k.org, id, 0, b.cfg.Timeout)
			}
			return
		}
		// Measured from before the ask, the allowance ends here no later
		// than in the trail.
		use := min(allowanceUse, time.Duration(res.TTLMillis)*time.Millisecond)
		a := &allowance{id: id, key: k, size: size, left: size, until: sent.Add(use)}
		if as.closed {
			b.lower(k.org, id, 0)
			return
		}
		if s.cur != nil {
			b.retire(s.cur)
		}
		s.cur, s.backoff = a, 0
		a.timer = time.AfterFunc(use, func() {
			as.mu.Lock()
			defer as.mu.Unlock()
			if s.cur == a {
				s.cur = nil
				b.retire(a)
			}
		})
	}()
}

// retire stops admitting calls under a and lowers it to what it owes: the
// room no call took is free at once, and the allowance ends once its calls
// have drawn. It must be called with the allowances' mutex held.
func (b *budgeter) retire(a *allowance) {
	if a.retired {
		return
	}
	a.retired = true
	if a.timer != nil {
		a.timer.Stop()
	}
	b.lower(a.key.org, a.id, a.owed)
}

// drawn records that a call admitted under a, which took taken of it, has
// drawn (ok) or failed to, and lowers a retired allowance to what it still
// owes once its last call has: to nothing, which ends it, unless a draw
// failed, whose share it keeps holding until it expires.
func (b *budgeter) drawn(a *allowance, taken int64, ok bool) {
	b.allowances.mu.Lock()
	defer b.allowances.mu.Unlock()
	if ok {
		a.owed -= taken
	}
	if a.inflight--; a.retired && a.inflight == 0 {
		b.lower(a.key.org, a.id, a.owed)
	}
}

// lower settles the allowance (org, id) to owed in the background: a
// settlement only ever lowers what a reservation holds, and at $0 ends it.
func (b *budgeter) lower(org, id string, owed int64) { b.lowerAfter(org, id, owed, 0) }

// lowerAfter is lower, after wait.
func (b *budgeter) lowerAfter(org, id string, owed int64, wait time.Duration) {
	b.settling.Add(1)
	go func() {
		defer b.settling.Done()
		time.Sleep(wait)
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		defer cancel()
		if err := b.cfg.Trail.Settle(ctx, wire.SettleRequest{ID: id, Org: org, CostUSD: float64(owed) / agenttrail.NanoUSD}); err != nil {
			b.logger.Warn("llm proxy: lowering a budget allowance failed; it holds until it expires", "id", id, "err", err)
		}
	}()
}

// closeAllowances retires every allowance, for a clean shutdown, and asks
// for no more.
func (b *budgeter) closeAllowances() {
	as := &b.allowances
	as.mu.Lock()
	defer as.mu.Unlock()
	as.closed = true
	for _, s := range as.scopes {
		if s.cur != nil {
			b.retire(s.cur)
			s.cur = nil
		}
	}
}
