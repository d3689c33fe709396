package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/wire"
)

// Budget enforcement (docs/architecture.md, "Budgets"): before a metered
// call goes upstream the proxy reserves its worst-case cost with the trail,
// which decides atomically against every budget that applies; a refused
// call never reaches the provider. When the call ends the proxy settles the
// reservation to the real cost, and the call's event carries the
// reservation's id, so the trail counts the cost once.

// BudgetChecker is what the proxy needs of the trail to enforce budgets;
// *client.Client implements it.
type BudgetChecker interface {
	Reserve(ctx context.Context, req wire.ReserveRequest) (wire.ReserveResult, error)
	Settle(ctx context.Context, req wire.SettleRequest) error
}

// BudgetConfig configures budget enforcement. Trail is required.
type BudgetConfig struct {
	// Trail reserves and settles.
	Trail BudgetChecker
	// DenyUnreachable refuses calls (503) while the trail cannot be
	// asked. By default they go through (fail-open) and their events say
	// budget_unchecked; the Recorder delivers those events, and with them
	// their cost, once the trail is back.
	DenyUnreachable bool
	// Timeout bounds one reservation request; 0 means 2 s.
	Timeout time.Duration
	// TTL is how long a reservation holds if it is never settled (a proxy
	// that died); 0 means 15 minutes. Calls that run longer keep going,
	// but their reservation no longer counts.
	TTL time.Duration
	// MaxOutputTokens is the output a request that sets no cap is assumed
	// to produce at worst; 0 means 32,768.
	MaxOutputTokens int64
	// NoAllowances makes every call ask the trail for itself, instead of
	// being admitted against an allowance the proxy holds (allowance.go):
	// a round trip on every call, and budget changes that apply to the
	// next call rather than within 2 s. A TTL over agenttrail.SettledTTL
	// implies it: lowering a retired allowance, a settlement, would cut
	// the hold of its calls in flight to that.
	NoAllowances bool

	// checkOnly reserves nothing (an amount of 0), so the trail only
	// checks spend against the limit: the check-then-spend design that
	// concurrent calls overrun. Tests set it to show the overshoot.
	checkOnly bool
}

// Defaults of BudgetConfig.
const (
	defaultBudgetTimeout   = 2 * time.Second
	defaultBudgetTTL       = 15 * time.Minute
	defaultMaxOutputTokens = 32768
	settleTimeout          = 10 * time.Second
)

// budgeter enforces budgets for a Proxy.
type budgeter struct {
	cfg    BudgetConfig
	logger *slog.Logger
	now    func() time.Time
	// settling counts the requests to the trail in the background:
	// settlements, allowances asked for and released (Proxy.WaitSettled).
	settling   sync.WaitGroup
	allowances allowances
}

func newBudgeter(cfg BudgetConfig, logger *slog.Logger, now func() time.Time) (*budgeter, error) {
	if cfg.Trail == nil {
		return nil, errors.New("llm proxy: budgets need a Trail to reserve with")
	}
	defaults.Positive(&cfg.Timeout, defaultBudgetTimeout)
	defaults.Positive(&cfg.TTL, defaultBudgetTTL)
	defaults.Positive(&cfg.MaxOutputTokens, defaultMaxOutputTokens)
	cfg.NoAllowances = cfg.NoAllowances || cfg.TTL > agenttrail.SettledTTL
	return &budgeter{cfg: cfg, logger: logger, now: now}, nil
}

// budgetCall is what the proxy knows of one call's reservation.
type budgetCall struct {
	id        string // the reservation's id and the event's
	inTokens  int64  // the input estimate
	price     Price
	priced    bool
	reserved  bool
	unchecked bool
	refused   string     // the refusing budget's name
	allowance *allowance // the allowance it was admitted under, if any
	taken     int64      // nano-dollars it took of it
}

// estimateTokens is a count of tokens that errs high: about one per three
// bytes of the request, where English text runs near four characters a
// token and the JSON around it adds bytes no model bills.
func estimateTokens(bytes int) int64 { return int64(bytes+2) / 3 }

// worstCase is the most a call of in input tokens and out output tokens
// can cost at p: every input token at the dearest input price.
func (p Price) worstCase(in, out int64) float64 {
	inPrice := max(p.Input, p.CacheWrite, p.CacheRead)
	return (float64(in)*inPrice + float64(out)*p.Output) / 1e6
}

// admit reserves c's worst case before it goes upstream. It answers the
// client itself and returns false when the call may not go ahead.
func (p *Proxy) admit(ctx context.Context, w http.ResponseWriter, c *call) bool {
	b := p.budget
	if b == nil || c.ep.meter == nil {
		return true
	}
	bc := &budgetCall{id: agenttrail.NewID(c.start), inTokens: estimateTokens(c.reqBytes)}
	c.budget = bc
	_, bc.price, bc.priced = p.prices.Lookup(c.reqModel)
	out := c.maxOut
	defaults.Positive(&out, b.cfg.MaxOutputTokens)
	var amount float64
	if bc.priced && !b.cfg.checkOnly {
		amount = min(bc.price.worstCase(bc.inTokens, out), agenttrail.MaxLLMCostUSD)
	}
	key := scopeKey{c.actor.Org, c.actor.Project, c.actor.ID, c.reqModel}
	nusd := agenttrail.USDToNano(amount)
	allowances := nusd > 0 && !b.cfg.NoAllowances
	if allowances {
		if a := b.take(key, nusd); a != nil {
			bc.allowance, bc.taken, bc.reserved = a, nusd, true
			return true
		}
	}
	rctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	res, err := b.cfg.Trail.Reserve(rctx, wire.ReserveRequest{
		ID: bc.id, Org: c.actor.Org, Project: c.actor.Project, ActorID: c.actor.ID, Model: c.reqModel,
		AmountUSD: amount, TTLSeconds: int(b.cfg.TTL.Seconds()),
	})
	switch {
	case err != nil && ctx.Err() != nil:
		c.clientGone = true
		return false
	case err != nil && !unreachable(err):
		// The trail answered and refused the check itself: the agent sent
		// what it cannot take (an actor id or model over its bounds), or
		// the proxy's token may not reserve. Letting such a call through
		// would let any agent skip every budget by sending one long header.
		status, msg := http.StatusServiceUnavailable, "refused by the proxy: the trail refused its budget check: "+err.Error()
		if agenttrail.ErrorCode(err) == agenttrail.EINVALID {
			status = http.StatusBadRequest
		}
		b.logger.Warn("llm proxy: the trail refused a budget check; refusing the call", "err", err)
		c.status, c.denied, c.errMsg = status, true, msg
		writeBudgetError(w, c.ep.provider, status, "budget_check_refused", "agenttrail llm proxy: "+msg, -1)
		return false
	case err != nil && b.cfg.DenyUnreachable:
		b.logger.Warn("llm proxy: budget check failed; refusing the call", "err", err)
		c.status, c.denied = http.StatusServiceUnavailable, true
		c.errMsg = "refused by the proxy: the trail cannot be asked about budgets and the proxy is set to deny then (--budget-unreachable deny)"
		writeBudgetError(w, c.ep.provider, http.StatusServiceUnavailable, "budget_unavailable", "agenttrail llm proxy: "+c.errMsg, -1)
		return false
	case err != nil:
		b.logger.Warn("llm proxy: budget check failed; letting the call through unchecked", "err", err)
		bc.unchecked = true
		return true
	case !res.Allowed && res.Denied != nil:
		d := res.Denied
		bc.refused = d.Name
		c.status, c.denied = http.StatusTooManyRequests, true
		c.errMsg = refusal(d, amount)
		retry := res.RetryAfterSeconds
		if d.ResetsAt.IsZero() {
			retry = -1 // a total budget never resets
		}
		writeBudgetError(w, c.ep.provider, http.StatusTooManyRequests, "budget_exceeded", "agenttrail llm proxy: "+c.errMsg, retry)
		return false
	}
	if !bc.priced && !b.cfg.checkOnly && len(res.Budgets) > 0 {
		// Nothing can hold a call of a model without a price to a limit:
		// it would reserve nothing and record no cost. Refuse it where a
		// budget applies; the reservation holds $0 and expires.
		c.status, c.denied = http.StatusForbidden, true
		c.errMsg = fmt.Sprintf("refused by the proxy: model %q has no price, and budget '%s' applies to this call (add the model to the proxy's --prices table)", c.reqModel, res.Budgets[0].Name)
		writeBudgetError(w, c.ep.provider, http.StatusForbidden, "budget_model_unpriced", "agenttrail llm proxy: "+c.errMsg, -1)
		return false
	}
	bc.reserved = len(res.Budgets) > 0 // nothing to settle when no budget applies
	if bc.reserved && allowances {
		b.want(key, nusd)
	}
	return true
}

// unreachable reports whether a failed budget check means the trail could
// not be asked — no answer, a broken one, or an answer that it is down or
// broken (EUNAVAILABLE, EINTERNAL: 5xx, a gateway's 502/504) — as opposed
// to an answer refusing the check. Only the first lets a call through
// under --budget-unreachable allow.
func unreachable(err error) bool {
	var ae *agenttrail.Error
	if !errors.As(err, &ae) {
		return true
	}
	switch ae.Code {
	case agenttrail.EUNAVAILABLE, agenttrail.EINTERNAL:
		return true
	}
	return false
}

// refusal says why budget d refused a call of up to amount dollars.
func refusal(d *wire.BudgetStatus, amount float64) string {
	per := "per " + d.Period
	if d.Period == string(agenttrail.PeriodTotal) {
		per = "in total"
	}
	usd := func(v float64) string { return agenttrail.FormatUSD(agenttrail.USDToNano(v)) }
	msg := fmt.Sprintf("budget_exceeded: budget '%s' of %s %s exceeded (spent %s, reserved by calls in flight and proxies' allowances %s, this call may cost up to %s)",
		d.Name, usd(d.LimitUSD), per, usd(d.SpentUSD), usd(d.ReservedUSD), usd(amount))
	if !d.ResetsAt.IsZero() {
		msg += "; it resets at " + d.ResetsAt.UTC().Format(time.RFC3339)
	}
	return msg
}

// writeBudgetError answers in the provider's error shape, so the SDK
// raises its typed error: for OpenAI an error whose type and code are
// code; for Anthropic a rate_limit_error (429) or api_error whose message
// starts with code. retryAfter < 0 sends no Retry-After. x-should-retry:
// false keeps the official SDKs from retrying a refusal that no retry
// within seconds can turn around.
func writeBudgetError(w http.ResponseWriter, provider Provider, status int, code, msg string, retryAfter int64) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if retryAfter >= 0 {
		h.Set("Retry-After", strconv.FormatInt(retryAfter, 10))
	}
	if status == http.StatusTooManyRequests {
		h.Set("X-Should-Retry", "false")
	}
	w.WriteHeader(status)
	var body any
	if provider == ProviderAnthropic {
		typ := "rate_limit_error"
		if status != http.StatusTooManyRequests {
			typ = "api_error"
		}
		body = map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}}
	} else {
		body = map[string]any{"error": map[string]any{"message": msg, "type": code, "code": code, "param": nil}}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// settle completes the event of a call under budgets (its id, the budget
// that refused it, an estimate of usage the provider did not report) and
// settles the reservation to the call's cost, in the background: the
// client has its answer already.
func (p *Proxy) settle(ctx context.Context, c *call, e *agenttrail.Event, l *agenttrail.LLM) {
	bc := c.budget
	if bc == nil {
		return
	}
	if bc.refused != "" {
		l.Budget = bc.refused
		return
	}
	e.ID = bc.id
	l.BudgetUnchecked = bc.unchecked
	// The provider bills what it generated: a call that reached it and did
	// not fail, or a stream cut short. Usage it did not report (a stream
	// cut before its usage, an answer without one) is estimated high.
	billed := c.status > 0 && c.status < 400 && !c.unreachable
	seen := estimateTokens(c.seenText)
	switch {
	case billed && !c.usageSeen:
		l.InputTokens, l.OutputTokens, l.Estimated = bc.inTokens, seen, true
	case billed && l.Incomplete && seen > l.OutputTokens:
		l.OutputTokens, l.Estimated = seen, true
	}
	if l.Estimated {
		// Priced as the answer names the model, else as the request did.
		price, priced := bc.price, bc.priced
		if _, pr, ok := p.prices.Lookup(c.modelName()); ok {
			price, priced = pr, true
		}
		if priced {
			cost := price.Cost(*l)
			l.CostUSD, l.CostUnknown = &cost, false
		}
	}
	if !bc.reserved {
		return
	}
	b, org, cost := p.budget, c.actor.Org, l.Cost()
	req := wire.SettleRequest{ID: bc.id, Org: org, CostUSD: cost}
	if a := bc.allowance; a != nil {
		req.Allowance, req.TakenUSD = a.id, float64(bc.taken)/agenttrail.NanoUSD
	}
	b.settling.Add(1)
	go func() {
		defer b.settling.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
		defer cancel()
		err := b.cfg.Trail.Settle(sctx, req)
		if bc.allowance != nil {
			// After the draw: the allowance is lowered past the
			// call's share only once it landed.
			b.drawn(bc.allowance, bc.taken, err == nil)
		}
		if err != nil {
			// The reservation still ends when the event is stored, or
			// when it expires.
			b.logger.Warn("llm proxy: settling a budget reservation failed", "id", bc.id, "err", err)
		}
	}()
}

// WaitSettled releases the proxy's budget allowances and waits for the
// settlements and releases in flight, for a clean shutdown, once no call
// is: calls after it reserve each for itself.
func (p *Proxy) WaitSettled() {
	if p.budget != nil {
		p.budget.closeAllowances()
		p.budget.settling.Wait()
	}
}
