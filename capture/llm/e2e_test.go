package llm_test

import (
	"context"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/redact"
	"github.com/agenttrail/agenttrail/servertest"
)

// TestEndToEnd runs the proxy with the real SDK Recorder in front of a real
// server on SQLite. The server is down for the first calls: the agents'
// traffic must flow regardless, and every event must be stored once the
// server is up, with its usage and cost intact.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	addr := capturetest.FreeAddr(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	rec := capturetest.Recorder(t, "http://"+addr)
	red, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t)
	upURL, _ := url.Parse(up.URL)
	p, err := llm.New(llm.Config{Upstream: upURL, Recorder: rec, Identities: testIdentities(), Redactor: red, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(p)
	defer proxy.Close()
	env := &proxyEnv{srv: proxy}
	oai, ant := openaiClient(env, ciKey), anthropicClient(env, claudeKey)

	// The audit server is down: the calls still go through.
	if _, err := oai.Chat.Completions.New(ctx, chatParams("gpt-4o")); err != nil {
		t.Fatalf("chat with the audit server down: %v", err)
	}
	s := oai.Chat.Completions.NewStreaming(ctx, chatParams("o4-mini"))
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatalf("chat stream with the audit server down: %v", err)
	}
	ms := ant.Messages.NewStreaming(ctx, messageParams("claude-sonnet-4-5"))
	var msg anthropic.Message
	for ms.Next() {
		msg.Accumulate(ms.Current())
	}
	if err := ms.Err(); err != nil {
		t.Fatalf("messages stream with the audit server down: %v", err)
	}

	srv := servertest.StartAt(t, addr, t.TempDir())
	if _, err := oai.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Tell me a story.")},
	}); err != nil {
		t.Fatal(err)
	}

	type want struct {
		action string
		actor  string
		llm    agenttrail.LLM
	}
	wants := []want{
		{llm.ActionChatCompletions, ciActor, wantOpenAI(t, "gpt-4o-2024-08-06", usageOf("gpt-4o"), false)},
		{llm.ActionChatCompletions, ciActor, wantOpenAI(t, "o4-mini-2025-04-16", usageOf("o4-mini"), true)},
		{llm.ActionMessages, claudeActor, wantAnthropic(t, "claude-sonnet-4-5-20250929", usageOf("claude-sonnet-4-5"), true)},
		{llm.ActionResponses, ciActor, wantOpenAI(t, "gpt-4.1-2025-04-14", usageOf("gpt-4.1"), false)},
	}
	f := agenttrail.Filter{Source: []string{agenttrail.SourceLLM}}
	events := capturetest.WaitEvents(t, srv.Store, f, len(wants))
	// A streamed call is recorded when its stream ends, which may be just
	// after the client moved on to the next call: match events by model,
	// not by position.
	byModel := map[string]agenttrail.Event{}
	seqs := map[int64]bool{}
	for _, e := range events {
		l, _ := e.LLM()
		byModel[l.Model] = e
		if e.ProducerID == "" {
			t.Errorf("event %s has no producer_id", e.ID)
		}
		seqs[e.ProducerSeq] = true
	}
	for i := int64(1); i <= int64(len(wants)); i++ {
		if !seqs[i] {
			t.Errorf("producer_seq %d missing among the stored events: %v", i, seqs)
		}
	}
	var total float64
	for _, w := range wants {
		e, ok := byModel[w.llm.Model]
		if !ok {
			t.Errorf("no stored event for model %s", w.llm.Model)
			continue
		}
		checkEvent(t, e, w.action, w.llm.Model, 200, agenttrail.ResultSuccess, w.actor)
		checkLLM(t, e, w.llm)
		total += *w.llm.CostUSD
	}

	// Cost is first-class: the server aggregates it without parsing JSON.
	buckets, err := srv.Store.Aggregate(ctx, f, agenttrail.DimSource)
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 1 || buckets[0].Count != 4 || math.Abs(buckets[0].CostUSD-total) > 1e-12 {
		t.Errorf("aggregate = %+v, want 4 events costing %v", buckets, total)
	}
}
