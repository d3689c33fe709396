package llm_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/wire"
)

// budgetProxy starts a proxy in front of up that records to, and reserves
// with, the test server at url; mod adjusts its budget settings, and each
// of more the proxy's.
func budgetProxy(t testing.TB, url_ string, up *upstream, mod func(*llm.BudgetConfig), more ...func(*llm.Config)) *proxyEnv {
	t.Helper()
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	api := client.New(url_, client.WithToken(servertest.Token))
	t.Cleanup(api.CloseIdleConnections)
	bc := &llm.BudgetConfig{Trail: api, Timeout: 500 * time.Millisecond}
	if mod != nil {
		mod(bc)
	}
	cfg := llm.Config{
		Upstream: u, Recorder: capturetest.Recorder(t, url_), Identities: testIdentities(), Budget: bc,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	}
	for _, f := range more {
		f(&cfg)
	}
	p, err := llm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(func() { srv.Close(); p.WaitSettled() })
	return &proxyEnv{proxy: p, up: up, srv: srv}
}

// countingChecker counts the reservations of single calls, the ones a call
// waits for, and the allowances granted.
type countingChecker struct {
	llm.BudgetChecker
	calls, asks, granted atomic.Int64
	size                 atomic.Value // float64: the last allowance granted, in USD
	failDraws            bool         // draws from allowances fail, as with the trail down
}

func (c *countingChecker) Reserve(ctx context.Context, req wire.ReserveRequest) (wire.ReserveResult, error) {
	if !req.Allowance {
		c.calls.Add(1)
	} else {
		c.asks.Add(1)
	}
	res, err := c.BudgetChecker.Reserve(ctx, req)
	if req.Allowance && err == nil && res.Allowed {
		c.granted.Add(1)
		c.size.Store(req.AmountUSD)
	}
	return res, err
}

func (c *countingChecker) Settle(ctx context.Context, req wire.SettleRequest) error {
	if c.failDraws && req.Allowance != "" {
		return &agenttrail.Error{Code: agenttrail.EUNAVAILABLE, Message: "the trail is down"}
	}
	return c.BudgetChecker.Settle(ctx, req)
}

// allowanceEnv is a server with a daily budget of acme and a proxy in
// front of up whose asks are counted, with the client and the request of
// the allowance tests: a gpt-4o call of at most 100 output tokens.
type allowanceEnv struct {
	srv    *servertest.Server
	proxy  *proxyEnv
	cc     *countingChecker
	oai    openai.Client
	params openai.ChatCompletionNewParams
}

func newAllowanceEnv(t *testing.T, limitUSD float64, up *upstream, failDraws bool, mods ...func(*llm.BudgetConfig)) *allowanceEnv {
	t.Helper()
	a := &allowanceEnv{srv: servertest.Start(t), params: chatParams("gpt-4o")}
	putBudget(t, a.srv, "daily", wire.BudgetRequest{Org: "acme", LimitUSD: limitUSD, Period: "day"})
	a.proxy = budgetProxy(t, a.srv.URL, up, func(bc *llm.BudgetConfig) {
		a.cc = &countingChecker{BudgetChecker: bc.Trail, failDraws: failDraws}
		bc.Trail = a.cc
		for _, m := range mods {
			m(bc)
		}
	})
	a.oai = openaiClient(a.proxy, ciKey)
	a.params.MaxTokens = openai.Int(100)
	return a
}

// call makes one call through the proxy.
func (a *allowanceEnv) call(t *testing.T) {
	t.Helper()
	if _, err := a.oai.Chat.Completions.New(context.Background(), a.params); err != nil {
		t.Fatal(err)
	}
}

// granted makes a first call and waits for the allowance it leads to.
func (a *allowanceEnv) granted(t *testing.T) {
	t.Helper()
	a.call(t)
	// Granted in the trail is not yet held in the proxy: wait for the
	// proxy's own state.
	deadline := time.Now().Add(10 * time.Second)
	for a.proxy.proxy.AllowancesHeld() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no allowance held after a call under a budget with room (%d granted)", a.cc.granted.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBudgetAllowance: after a call reserved, the proxy holds an allowance
// and admits the next calls of that agent and model without asking; each
// call's cost counts once, and when the proxy stops, nothing stays
// reserved.
func TestBudgetAllowance(t *testing.T) {
	a := newAllowanceEnv(t, 10, newUpstream(t), false)
	a.granted(t)
	// The allowance has room for 32 calls of the first one's size.
	for range 8 {
		a.call(t)
	}
	if got := a.cc.calls.Load(); got != 1 {
		t.Errorf("%d calls waited for a reservation of their own, want only the first", got)
	}
	a.proxy.proxy.WaitSettled()
	events := capturetest.WaitEvents(t, a.srv.Store, llmEvents, 9)
	var cost float64
	for _, e := range events {
		l, _ := e.LLM()
		cost += l.Cost()
	}
	if st := budgetState(t, a.srv, "daily"); math.Abs(st.SpentUSD-cost) > 1e-9 || st.ReservedUSD != 0 {
		t.Errorf("status after the proxy stopped: spent $%g reserved $%g, want the calls' $%g and nothing reserved", st.SpentUSD, st.ReservedUSD, cost)
	}
}

func putBudget(t testing.TB, srv *servertest.Server, name string, req wire.BudgetRequest) {
	t.Helper()
	if _, err := client.New(srv.URL, client.WithToken(servertest.Token)).PutBudget(context.Background(), name, req); err != nil {
		t.Fatalf("PutBudget(%s): %v", name, err)
	}
}

func budgetState(t testing.TB, srv *servertest.Server, name string) wire.BudgetStatus {
	t.Helper()
	st, err := client.New(srv.URL, client.WithToken(servertest.Token)).BudgetStatus(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range st.Budgets {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no budget %s", name)
	return wire.BudgetStatus{}
}

var llmEvents = agenttrail.Filter{Source: []string{agenttrail.SourceLLM}}

// TestBudgetSDKs drives the official SDKs through the proxy: calls pass
// under the limit; at it the SDK returns its typed 429 error with the
// budget_exceeded code and a Retry-After of the seconds until the period
// resets, without retrying, and the upstream never sees the call.
func TestBudgetSDKs(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t)
	env := budgetProxy(t, srv.URL, newUpstream(t), nil)
	// One gpt-4o call costs c; two fit under 2c plus a little, a third's
	// worst case does not.
	c := *wantOpenAI(t, "gpt-4o-2024-08-06", usageOf("gpt-4o"), false).CostUSD
	putBudget(t, srv, "daily", wire.BudgetRequest{Org: "acme", LimitUSD: 2*c + 0.0001, Period: "day", Timezone: "America/New_York", Model: "gpt-4o"})
	params := chatParams("gpt-4o")
	params.MaxTokens = openai.Int(100)
	oai := openaiClient(env, ciKey)
	for i := range 2 {
		if _, err := oai.Chat.Completions.New(ctx, params); err != nil {
			t.Fatalf("call %d under the limit: %v", i+1, err)
		}
		capturetest.WaitEvents(t, srv.Store, llmEvents, i+1)
	}
	// The fake upstream bills more than the proxy's worst case for these
	// requests (1,117 prompt tokens for a request of a few hundred bytes),
	// so until the store's snapshot of stored cost is read anew (every
	// 50 ms while decisions run, see sqlite's ledger) the two calls count
	// as their smaller reservations. Reading the budgets' state takes a new
	// snapshot, as a decision after a quiet spell does: the third call is
	// then decided on the stored cost, whatever the machine's speed.
	budgetState(t, srv, "daily")
	// The SDK's default retries: x-should-retry: false stops them.
	retrying := openai.NewClient(option.WithBaseURL(env.srv.URL+"/v1/"), option.WithAPIKey(ciKey))
	before := env.up.count()
	_, err := retrying.Chat.Completions.New(ctx, params)
	var apierr *openai.Error
	if !errors.As(err, &apierr) || apierr.StatusCode != 429 || apierr.Code != "budget_exceeded" || apierr.Type != "budget_exceeded" {
		t.Fatalf("call at the limit = %v, want an *openai.Error 429 budget_exceeded", err)
	}
	if !strings.Contains(apierr.Message, "budget 'daily' of $0.00") && !strings.Contains(apierr.Message, "budget 'daily' of") {
		t.Errorf("message %q does not name the budget", apierr.Message)
	}
	ny, _ := time.LoadLocation("America/New_York")
	now := time.Now().In(ny)
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, ny)
	ra, _ := strconv.Atoi(apierr.Response.Header.Get("Retry-After"))
	if want := time.Until(midnight).Seconds(); math.Abs(float64(ra)-want) > 5 {
		t.Errorf("Retry-After = %d, want about %.0f (seconds to New York midnight)", ra, want)
	}
	if env.up.count() != before {
		t.Errorf("the upstream saw %d requests for a refused call", env.up.count()-before)
	}
	denied := capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{Source: []string{agenttrail.SourceLLM}, Result: []string{"denied"}}, 1)
	if e := denied[0]; e.StatusCode != 429 {
		t.Errorf("refusal recorded with status %d, want 429", e.StatusCode)
	} else if l, _ := e.LLM(); l.Budget != "daily" {
		t.Errorf("refusal recorded with metadata.llm.budget %q, want daily", l.Budget)
	}
	if st := budgetState(t, srv, "daily"); math.Abs(st.SpentUSD-2*c) > 1e-9 || st.ReservedUSD != 0 {
		t.Errorf("status: spent $%g reserved $%g, want $%g and 0", st.SpentUSD, st.ReservedUSD, 2*c)
	}

	// Anthropic: a budget of the reviewer agent, already too small.
	putBudget(t, srv, "reviewer", wire.BudgetRequest{Org: "acme", ActorID: claudeActor, LimitUSD: 0.000001, Period: "week"})
	ant := anthropic.NewClient(anthropicopt.WithBaseURL(env.srv.URL), anthropicopt.WithAPIKey(claudeKey))
	_, err = ant.Messages.New(ctx, messageParams("claude-sonnet-4-5"))
	var aerr *anthropic.Error
	if !errors.As(err, &aerr) || aerr.StatusCode != 429 || aerr.Type() != "rate_limit_error" || !strings.Contains(aerr.Message, "budget_exceeded") {
		t.Fatalf("anthropic call over its budget = %v, want *anthropic.Error 429 rate_limit_error with budget_exceeded", err)
	}
	if aerr.Response.Header.Get("Retry-After") == "" {
		t.Errorf("no Retry-After on a weekly budget's refusal")
	}
	capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{Source: []string{agenttrail.SourceLLM}, Result: []string{"denied"}}, 2)
}

// TestBudgetRace runs 50 concurrent streamed calls through two proxies
// sharing one server against a $0.10 budget: the stored spend stays within
// the limit plus one call's reservation. The same run without reservations
// (check-then-spend) overshoots by far.
func TestBudgetRace(t *testing.T) {
	const calls = 50
	run := func(t *testing.T, checkOnly bool) (spent, worst float64) {
		srv := servertest.Start(t)
		up := newUpstream(t)
		up.hold = make(chan struct{})
		mod := func(bc *llm.BudgetConfig) {
			// A loaded machine must not turn a slow decision into a
			// fail-open pass: this test is about decisions.
			bc.Timeout = time.Minute
			if checkOnly {
				llm.CheckOnly(bc)
			}
		}
		proxies := []*proxyEnv{budgetProxy(t, srv.URL, up, mod), budgetProxy(t, srv.URL, up, mod)}
		putBudget(t, srv, "cap", wire.BudgetRequest{Org: "acme", LimitUSD: 0.10, Period: "total"})
		params := chatParams("o4-mini")
		params.MaxCompletionTokens = openai.Int(2000)
		p := price(t, "o4-mini")
		worst = (float64((len(`{"messages":[{"content":"Describe the image.","role":"user"}],"model":"o4-mini","max_completion_tokens":2000,"stream":true,"stream_options":{"include_usage":true}}`)+2)/3)*p.Input + 2000*p.Output) / 1e6
		var refused, done atomic.Int64
		var wg sync.WaitGroup
		for i := range calls {
			oai := openaiClient(proxies[i%2], ciKey)
			wg.Go(func() {
				defer done.Add(1)
				s := oai.Chat.Completions.NewStreaming(context.Background(), params)
				for s.Next() {
				}
				var apierr *openai.Error
				if err := s.Err(); errors.As(err, &apierr) && apierr.Code == "budget_exceeded" {
					refused.Add(1)
				} else if err != nil {
					t.Errorf("stream: %v", err)
				}
			})
		}
		// Every call is decided (upstream reached or refused) before any
		// stream may finish: all overlap, as a burst of agents would.
		deadline := time.Now().Add(30 * time.Second)
		for int64(up.count())+refused.Load() < calls && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		close(up.hold)
		wg.Wait()
		capturetest.WaitEvents(t, srv.Store, llmEvents, calls)
		buckets, err := srv.Store.Aggregate(context.Background(), llmEvents, agenttrail.DimSource)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range buckets {
			spent += b.CostUSD
		}
		t.Logf("checkOnly=%v: %d of %d calls refused, spent $%.4f of $0.10 (one reservation: $%.4f)", checkOnly, refused.Load(), calls, spent, worst)
		return spent, worst
	}
	t.Run("reserved", func(t *testing.T) {
		if spent, worst := run(t, false); spent > 0.10+worst {
			t.Errorf("spent $%.4f with reservations, over the bound $0.10 + $%.4f", spent, worst)
		}
	})
	t.Run("check-only", func(t *testing.T) {
		if spent, worst := run(t, true); spent <= 0.10+worst {
			t.Errorf("spent $%.4f without reservations: the overshoot they prevent did not show", spent)
		}
	})
}

// TestBudgetAllowanceRefused: where an allowance would take over half a
// budget none is granted, and a scope asks again only after a pause, not
// beside every call.
func TestBudgetAllowanceRefused(t *testing.T) {
	// 32 calls' worth of these (~$0.035) is over half of $0.06; twenty
	// calls (~$0.04) fit.
	a := newAllowanceEnv(t, 0.06, newUpstream(t), false)
	for range 20 {
		a.call(t)
	}
	a.proxy.proxy.WaitSettled()
	if a.cc.granted.Load() != 0 || a.cc.calls.Load() != 20 {
		t.Errorf("%d allowances granted, %d of 20 calls asked for themselves; want none and all", a.cc.granted.Load(), a.cc.calls.Load())
	}
	if n := a.cc.asks.Load(); n < 1 || n > 2 {
		// One refusal, then a pause of a second at least: the twenty
		// calls take far less on any machine that runs this test.
		t.Errorf("%d allowances asked for beside 20 calls, want 1 (2 if the calls took over a second)", n)
	}
}

// TestBudgetNoAllowances: with allowances off, every call asks for itself
// and none is asked for.
func TestBudgetNoAllowances(t *testing.T) {
	a := newAllowanceEnv(t, 1000, newUpstream(t), false, func(bc *llm.BudgetConfig) { bc.NoAllowances = true })
	for range 5 {
		a.call(t)
	}
	a.proxy.proxy.WaitSettled()
	if a.cc.calls.Load() != 5 || a.cc.asks.Load() != 0 {
		t.Errorf("%d of 5 calls asked for themselves, %d allowances asked for; want 5 and none", a.cc.calls.Load(), a.cc.asks.Load())
	}
}

// TestBudgetAllowanceRetired: once the proxy stops admitting under an
// allowance (after 2 s), the room no call took is free at once, though a
// call admitted under it still streams; when that call ends, nothing
// stays held.
func TestBudgetAllowanceRetired(t *testing.T) {
	up := newUpstream(t)
	up.hold = make(chan struct{})
	a := newAllowanceEnv(t, 1000, up, false)
	a.granted(t)
	share := a.cc.size.Load().(float64) / 32
	streamed := make(chan error, 1)
	go func() {
		s := a.oai.Chat.Completions.NewStreaming(context.Background(), a.params)
		for s.Next() {
		}
		streamed <- s.Err()
	}()
	for up.count() < 2 {
		time.Sleep(time.Millisecond)
	}
	if a.cc.calls.Load() != 1 {
		t.Fatalf("the stream asked for a reservation of its own; want it admitted under the allowance")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := budgetState(t, a.srv, "daily")
		// The stream's request is a little longer than the first
		// call's: its worst case, its share, is a little more.
		if st.ReservedUSD > share && st.ReservedUSD < 2*share {
			break // the allowance, retired, holds only the stream's share
		}
		if time.Now().After(deadline) {
			t.Fatalf("reserved $%g while the stream runs after the allowance retired, want its share, about $%g", st.ReservedUSD, share)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(up.hold)
	if err := <-streamed; err != nil {
		t.Fatal(err)
	}
	a.proxy.proxy.WaitSettled()
	capturetest.WaitEvents(t, a.srv.Store, llmEvents, 2)
	if st := budgetState(t, a.srv, "daily"); st.ReservedUSD != 0 {
		t.Errorf("reserved $%g after both calls ended and were stored, want 0", st.ReservedUSD)
	}
}

// TestBudgetAllowanceDrawFails: calls admitted under an allowance whose
// draws fail (the trail down after they were admitted) keep their share
// held: the proxy lowers the allowance to what they took, and no further.
func TestBudgetAllowanceDrawFails(t *testing.T) {
	a := newAllowanceEnv(t, 1000, newUpstream(t), true)
	a.granted(t)
	for range 3 {
		a.call(t)
	}
	a.proxy.proxy.WaitSettled()
	capturetest.WaitEvents(t, a.srv.Store, llmEvents, 4)
	// Each call took the worst case it would have reserved: a 32nd of
	// the allowance. Their events are stored, so their cost counts twice
	// for now, which errs towards refusing, never towards overspending.
	share := 3 * a.cc.size.Load().(float64) / 32
	if st := budgetState(t, a.srv, "daily"); math.Abs(st.ReservedUSD-share) > 1e-9 {
		t.Errorf("reserved $%g after three draws failed, want their $%g still held", st.ReservedUSD, share)
	}
}

// TestBudgetAllowanceRace: ten agents on two proxies call in a loop until
// refused, against a total budget with room for allowances at first: calls
// are admitted under them, and near the limit, where no allowance is
// granted, each asks for itself. The stored spend stays within the limit
// plus one call's reservation.
func TestBudgetAllowanceRace(t *testing.T) {
	const limit, workers = 1.00, 10
	srv := servertest.Start(t)
	up := newUpstream(t)
	var checkers []*countingChecker
	var proxies []*proxyEnv
	for range 2 {
		proxies = append(proxies, budgetProxy(t, srv.URL, up, func(bc *llm.BudgetConfig) {
			bc.Timeout = time.Minute // decisions, not fail-open passes
			cc := &countingChecker{BudgetChecker: bc.Trail}
			checkers = append(checkers, cc)
			bc.Trail = cc
		}))
	}
	putBudget(t, srv, "cap", wire.BudgetRequest{Org: "acme", LimitUSD: limit, Period: "total"})
	params := chatParams("o4-mini")
	params.MaxCompletionTokens = openai.Int(2000)
	p := price(t, "o4-mini")
	worst := (float64((len(`{"messages":[{"content":"Describe the image.","role":"user"}],"model":"o4-mini","max_completion_tokens":2000,"stream":true,"stream_options":{"include_usage":true}}`)+2)/3)*p.Input + 2000*p.Output) / 1e6
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for i := range workers {
		oai := openaiClient(proxies[i%2], ciKey)
		wg.Go(func() {
			for {
				s := oai.Chat.Completions.NewStreaming(context.Background(), params)
				for s.Next() {
				}
				var apierr *openai.Error
				if err := s.Err(); errors.As(err, &apierr) && apierr.Code == "budget_exceeded" {
					return
				} else if err != nil {
					t.Errorf("stream: %v", err)
					return
				}
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	var asked, granted int64
	for i, px := range proxies {
		px.proxy.WaitSettled()
		asked, granted = asked+checkers[i].calls.Load(), granted+checkers[i].granted.Load()
	}
	calls := capturetest.WaitEvents(t, srv.Store, llmEvents, int(admitted.Load())+workers)
	var spent float64
	for _, e := range calls {
		l, _ := e.LLM()
		spent += l.Cost()
	}
	t.Logf("%d calls admitted, %d of them under %d allowances; spent $%.4f of $%.2f (one reservation: $%.4f)", admitted.Load(), admitted.Load()+workers-asked, granted, spent, limit, worst)
	if spent > limit+worst {
		t.Errorf("spent $%.4f, over the bound $%.2f + $%.4f", spent, limit, worst)
	}
	if granted == 0 || asked >= admitted.Load()+workers {
		t.Errorf("%d allowances granted, %d of %d calls asked: no call was admitted under an allowance", granted, asked, admitted.Load()+workers)
	}
	if st := budgetState(t, srv, "cap"); st.ReservedUSD != 0 || math.Abs(st.SpentUSD-spent) > 1e-9 {
		t.Errorf("status after the proxies stopped: spent $%g reserved $%g, want $%g and nothing reserved", st.SpentUSD, st.ReservedUSD, spent)
	}
}

// settledCall waits for the one llm-proxy event of a call, and then for
// its budget to hold no reservation: the cost counts once, as spend.
func settledCall(t *testing.T, srv *servertest.Server, budget string) agenttrail.LLM {
	t.Helper()
	e := capturetest.WaitEvents(t, srv.Store, llmEvents, 1)[0]
	l, _ := e.LLM()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := budgetState(t, srv, budget)
		if st.ReservedUSD == 0 && math.Abs(st.SpentUSD-l.Cost()) < 1e-9 {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("budget %s: spent $%g reserved $%g, want $%g spent and nothing reserved", budget, st.SpentUSD, st.ReservedUSD, l.Cost())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBudgetSettle: a stream cut before its usage, and an answer without
// usage, settle to an estimate of what was generated, and that estimate
// is what the event records, so spend counts it.
func TestBudgetSettle(t *testing.T) {
	ctx := context.Background()
	t.Run("interrupted stream", func(t *testing.T) {
		srv := servertest.Start(t)
		// The stand-in cuts streams of a model named cut-…, which the
		// price table must know: a model without a price is refused
		// under a budget.
		base, err := llm.DefaultPrices()
		if err != nil {
			t.Fatal(err)
		}
		prices, err := llm.ParsePrices([]byte(`{"aliases": {"cut-o4-mini": "o4-mini"}}`), base)
		if err != nil {
			t.Fatal(err)
		}
		env := budgetProxy(t, srv.URL, newUpstream(t), nil, func(c *llm.Config) { c.Prices = prices })
		putBudget(t, srv, "cap", wire.BudgetRequest{Org: "acme", LimitUSD: 10, Period: "month"})
		params := chatParams("cut-o4-mini")
		params.MaxCompletionTokens = openai.Int(500)
		oai := openaiClient(env, ciKey)
		s := oai.Chat.Completions.NewStreaming(ctx, params)
		var text string
		for s.Next() {
			if ch := s.Current(); len(ch.Choices) > 0 {
				text += ch.Choices[0].Delta.Content
			}
		}
		if s.Err() == nil {
			t.Fatal("the cut stream ended without an error")
		}
		l := settledCall(t, srv, "cap")
		if !l.Estimated || !l.Incomplete || l.OutputTokens != int64(len(text)+2)/3 || l.InputTokens == 0 {
			t.Fatalf("cut stream recorded %+v, want an estimate of %d output tokens (%q seen)", l, (len(text)+2)/3, text)
		}
		if want := price(t, "o4-mini").Cost(l); l.CostUSD == nil || math.Abs(*l.CostUSD-want) > 1e-12 {
			t.Fatalf("cut stream cost %v, want %g", fmtCost(l.CostUSD), want)
		}
	})
	t.Run("no usage", func(t *testing.T) {
		srv := servertest.Start(t)
		up := &upstream{t: t}
		up.Server = httptest.NewServer(writeJSONHandler(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, friend."},"finish_reason":"stop"}]}`))
		t.Cleanup(up.Close)
		env := budgetProxy(t, srv.URL, up, nil)
		putBudget(t, srv, "cap", wire.BudgetRequest{Org: "acme", LimitUSD: 10, Period: "month"})
		oai := openaiClient(env, ciKey)
		if _, err := oai.Chat.Completions.New(ctx, chatParams("gpt-4o")); err != nil {
			t.Fatal(err)
		}
		l := settledCall(t, srv, "cap")
		if !l.Estimated || l.OutputTokens != int64(len("Hello there, friend.")+2)/3 || l.InputTokens == 0 || l.CostUSD == nil || *l.CostUSD <= 0 {
			t.Fatalf("answer without usage recorded %+v, want an estimated, priced usage", l)
		}
	})
	t.Run("streamed with usage", func(t *testing.T) {
		srv := servertest.Start(t)
		env := budgetProxy(t, srv.URL, newUpstream(t), nil)
		putBudget(t, srv, "cap", wire.BudgetRequest{Org: "acme", LimitUSD: 10, Period: "month"})
		ant := anthropicClient(env, claudeKey)
		ms := ant.Messages.NewStreaming(ctx, messageParams("claude-sonnet-4-5"))
		for ms.Next() {
		}
		if err := ms.Err(); err != nil {
			t.Fatal(err)
		}
		l := settledCall(t, srv, "cap")
		want := wantAnthropic(t, "claude-sonnet-4-5-20250929", usageOf("claude-sonnet-4-5"), true)
		if l.Estimated || l.OutputTokens != want.OutputTokens || math.Abs(l.Cost()-*want.CostUSD) > 1e-12 {
			t.Fatalf("stream with usage recorded %+v, want the reported usage %+v", l, want)
		}
	})
}

func writeJSONHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, body) }
}

// TestBudgetTrailDown: with the trail unreachable, calls go through by
// default and their events, delivered once it is back, say they were not
// checked; with deny they are refused with an error that says why.
func TestBudgetTrailDown(t *testing.T) {
	ctx := context.Background()
	addr := capturetest.FreeAddr(t)
	up := newUpstream(t)
	open := budgetProxy(t, "http://"+addr, up, nil)
	closed := budgetProxy(t, "http://"+addr, up, func(bc *llm.BudgetConfig) { bc.DenyUnreachable = true })
	oaiOpen, oaiClosed := openaiClient(open, ciKey), openaiClient(closed, ciKey)
	if _, err := oaiOpen.Chat.Completions.New(ctx, chatParams("gpt-4o")); err != nil {
		t.Fatalf("fail-open call with the trail down: %v", err)
	}
	before := up.count()
	_, err := oaiClosed.Chat.Completions.New(ctx, chatParams("gpt-4o"))
	var apierr *openai.Error
	if !errors.As(err, &apierr) || apierr.StatusCode != 503 || apierr.Code != "budget_unavailable" || !strings.Contains(apierr.Message, "--budget-unreachable deny") {
		t.Fatalf("fail-closed call with the trail down = %v, want a 503 budget_unavailable naming the setting", err)
	}
	if up.count() != before {
		t.Errorf("the refused call reached the upstream")
	}
	srv := servertest.StartAt(t, addr, t.TempDir())
	events := capturetest.WaitEvents(t, srv.Store, llmEvents, 2)
	var unchecked, denied int
	for _, e := range events {
		l, _ := e.LLM()
		if e.Result == agenttrail.ResultSuccess && l.BudgetUnchecked && l.CostUSD != nil {
			unchecked++
		}
		if e.Result == agenttrail.ResultDenied && e.StatusCode == 503 {
			denied++
		}
	}
	if unchecked != 1 || denied != 1 {
		t.Fatalf("after the trail came back: %s\nwant one unchecked success with its cost and one denied 503", capturetest.Dump(events))
	}
}
