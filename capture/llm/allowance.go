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
// (Budgets.Draw). The trail grants one only with room to spare — at least
// as much again left after it, below the warning threshold — and holds it
// at most until the period of its budgets ends; the proxy admits under it
// for at most allowanceUse, then retires it and releases what is left once
// the calls admitted under it have drawn. Near a limit no allowance is
// granted, and every call asks, as without allowances: the overshoot bound
// is the same, since an allowance was counted before any call under it ran.

const (
	// allowanceCalls sizes an allowance: this many calls of the size of
	// the one after which it is asked for.
	allowanceCalls = 32
	// allowanceUse is how long after asking the proxy admits calls under
	// an allowance: a budget changed meanwhile holds its calls from then.
	allowanceUse = 10 * time.Second
	// allowanceRetry is how long a scope waits to ask again after an
	// allowance was not granted or the ask failed.
	allowanceRetry = time.Second
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
	retired  bool      // admits no more calls; released once inflight is 0
	timer    *time.Timer
}

// scope is the allowance state of one scopeKey.
type scope struct {
	cur       *allowance
	asking    bool
	notBefore time.Time // ask no earlier
}

// allowances is a budgeter's allowances, by scope.
type allowances struct {
	mu     sync.Mutex
	scopes map[scopeKey]*scope
	closed bool
}

// take admits a call of amount under k's allowance when it has room and
// time left, and returns it; nil means the call must reserve.
func (b *budgeter) take(k scopeKey, amount int64, now time.Time) *allowance {
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
	if a.left < a.size/2 || a.until.Sub(now) < allowanceUse/2 {
		// Ask for the next before this one runs out, so that no call
		// waits for it.
		b.askLocked(s, k, a.size, now)
	}
	return a
}

// want asks for an allowance for k, sized for calls of amount, unless k
// has one with room for such a call or is asking already.
func (b *budgeter) want(k scopeKey, amount int64, now time.Time) {
	as := &b.allowances
	as.mu.Lock()
	defer as.mu.Unlock()
	s := as.scopes[k]
	if s == nil {
		if as.scopes == nil {
			as.scopes = map[scopeKey]*scope{}
		}
		if len(as.scopes) >= maxAllowanceScopes {
			for key, o := range as.scopes {
				if o.cur == nil && !o.asking && !now.Before(o.notBefore) {
					delete(as.scopes, key)
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
			AmountUSD: float64(size) / agenttrail.NanoUSD, TTLSeconds: int(b.cfg.TTL.Seconds()), Allowance: true,
		})
		granted := err == nil && res.Allowed && len(res.Budgets) > 0 && res.TTLMillis > 0
		as := &b.allowances
		as.mu.Lock()
		defer as.mu.Unlock()
		s.asking = false
		if !granted {
			s.notBefore = b.now().Add(allowanceRetry)
			if err != nil && ctx.Err() != nil {
				// The answer may have been lost with the allowance
				// granted: release it rather than let it hold until
				// it expires.
				b.release(k.org, id)
			}
			return
		}
		// Measured from before the ask, the allowance ends here no later
		// than in the trail.
		use := min(allowanceUse, time.Duration(res.TTLMillis)*time.Millisecond)
		a := &allowance{id: id, key: k, size: size, left: size, until: sent.Add(use)}
		if as.closed {
			b.release(k.org, id)
			return
		}
		if s.cur != nil {
			b.retire(s.cur)
		}
		s.cur = a
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

// retire stops admitting calls under a and releases it once every call
// admitted under it has drawn. It must be called with the allowances'
// mutex held.
func (b *budgeter) retire(a *allowance) {
	if a.retired {
		return
	}
	a.retired = true
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.inflight == 0 {
		b.release(a.key.org, a.id)
	}
}

// drawn records that a call admitted under a has drawn, and releases a
// when it was the last of a retired allowance.
func (b *budgeter) drawn(a *allowance) {
	b.allowances.mu.Lock()
	defer b.allowances.mu.Unlock()
	if a.inflight--; a.retired && a.inflight == 0 {
		b.release(a.key.org, a.id)
	}
}

// release ends the allowance (org, id) in the trail, in the background:
// a settlement at $0 ends a reservation at once.
func (b *budgeter) release(org, id string) {
	b.settling.Add(1)
	go func() {
		defer b.settling.Done()
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		defer cancel()
		if err := b.cfg.Trail.Settle(ctx, wire.SettleRequest{ID: id, Org: org}); err != nil {
			b.logger.Warn("llm proxy: releasing a budget allowance failed; it holds until it expires", "id", id, "err", err)
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
