package llm_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/wire"
)

// TestBudgetCheckRefusedIsNotFailOpen: fail-open is for a trail that cannot
// be asked. A check the trail refuses — here because the agent names itself
// with an actor id longer than any the trail takes — refuses the call; it
// used to go upstream unchecked, so one long header skipped every budget.
func TestBudgetCheckRefusedIsNotFailOpen(t *testing.T) {
	srv := servertest.Start(t)
	up := newUpstream(t)
	u, _ := url.Parse(up.URL)
	api := client.New(srv.URL, client.WithToken(servertest.Token))
	t.Cleanup(api.CloseIdleConnections)
	ids := &capture.Identities{Default: capture.Actor{ID: "unattributed", Org: "acme"}, AllowUnmapped: true}
	p, err := llm.New(llm.Config{
		Upstream: u, Recorder: capturetest.Recorder(t, srv.URL), Identities: ids,
		Budget: &llm.BudgetConfig{Trail: api, Timeout: 5 * time.Second},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(p)
	t.Cleanup(func() { ps.Close(); p.WaitSettled() })
	env := &proxyEnv{up: up, srv: ps}
	putBudget(t, srv, "tiny", wire.BudgetRequest{Org: "acme", LimitUSD: 0.000001, Period: "total"})

	for _, actor := range []string{"bot", strings.Repeat("b", 300)} {
		oai := openaiClient(env, "sk-whatever", option.WithHeader("X-Agenttrail-Actor-Id", actor), option.WithMaxRetries(0))
		_, err := oai.Chat.Completions.New(context.Background(), chatParams("gpt-4o"))
		var apierr *openai.Error
		if !errors.As(err, &apierr) || apierr.StatusCode/100 != 4 {
			t.Errorf("actor id of %d bytes: %v, want a 4xx refusal", len(actor), err)
		}
	}
	if n := up.count(); n != 0 {
		t.Errorf("%d calls reached the upstream over an exhausted budget, want 0", n)
	}
}

// TestUnpricedModelRefusedUnderBudget: a model missing from the price table
// would reserve nothing and record no cost, so no budget could stop it; it
// is refused where a budget applies, and passes where none does.
func TestUnpricedModelRefusedUnderBudget(t *testing.T) {
	srv := servertest.Start(t)
	up := newUpstream(t)
	env := budgetProxy(t, srv.URL, up, nil)
	oai := openaiClient(env, ciKey, option.WithMaxRetries(0))
	const ft = "ft:gpt-4o-2024-08-06:acme::abc123"
	if _, err := oai.Chat.Completions.New(context.Background(), chatParams(ft)); err != nil {
		t.Fatalf("without a budget, a call of an unpriced model: %v, want it through", err)
	}
	putBudget(t, srv, "cap", wire.BudgetRequest{Org: "acme", LimitUSD: 10, Period: "total"})
	_, err := oai.Chat.Completions.New(context.Background(), chatParams(ft))
	var apierr *openai.Error
	if !errors.As(err, &apierr) || apierr.StatusCode != 403 || apierr.Code != "budget_model_unpriced" {
		t.Fatalf("under a budget, a call of an unpriced model: %v, want 403 budget_model_unpriced", err)
	}
	if n := up.count(); n != 1 {
		t.Errorf("%d calls reached the upstream, want only the one made before the budget", n)
	}
}
