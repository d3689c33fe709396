package storetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// usageEvent is an LLM call of model at t with every counter set to tokens
// and the given cost.
func usageEvent(t testing.TB, id string, at time.Time, tokens int64, cost float64) agenttrail.Event {
	t.Helper()
	e := agenttrail.Event{ID: id, Time: at, ReceivedAt: at, Org: "acme", ActorType: agenttrail.ActorAgent, ActorID: "agent-1",
		Source: agenttrail.SourceLLM, Action: "chat.completions", Result: agenttrail.ResultSuccess}
	if err := e.SetLLM(agenttrail.LLM{Model: "m", InputTokens: tokens, OutputTokens: tokens, CacheReadTokens: tokens,
		CacheWriteTokens: tokens, ReasoningTokens: tokens, CostUSD: &cost}); err != nil {
		t.Fatal(err)
	}
	return e
}

// testUsageAtBounds stores events whose usage is at the bounds Validate
// allows, in the rolled-up hours and in the partial hours read from the
// events, and wants exact sums from both paths; usage over the bounds
// (the cost of 1e308 the stores once summed differently) is what Validate
// refuses, so no store is ever given it.
func testUsageAtBounds(t *testing.T, s agenttrail.Store) {
	h := Base().Truncate(time.Hour)
	const n = 40
	var events []agenttrail.Event
	for i := range n {
		events = append(events, usageEvent(t, fmt.Sprintf("u-%d", i), h.Add(time.Duration(i)*7*time.Minute),
			agenttrail.MaxLLMTokens, agenttrail.MaxLLMCostUSD))
	}
	AppendAll(t, s, events, 10)
	for _, f := range []agenttrail.Filter{{}, {Since: h.Add(time.Minute), Until: h.Add(3*time.Hour + time.Minute)}} {
		var want int64
		for _, e := range events {
			if f.Match(&e) {
				want++
			}
		}
		got, err := s.Aggregate(t.Context(), f, agenttrail.DimModel)
		if err != nil || len(got) != 1 {
			t.Fatalf("Aggregate(%s, by model) = %+v, %v; want one bucket", filterString(f), got, err)
		}
		b := got[0]
		tokens := want * agenttrail.MaxLLMTokens
		if b.Count != want || b.InputTokens != tokens || b.OutputTokens != tokens || b.CacheReadTokens != tokens ||
			b.CacheWriteTokens != tokens || b.ReasoningTokens != tokens || b.CostUSD != float64(want)*agenttrail.MaxLLMCostUSD {
			t.Errorf("Aggregate(%s, by model) = %+v, want %d events, %d of each token, cost %v", filterString(f), b, want, tokens, float64(want)*agenttrail.MaxLLMCostUSD)
		}
	}
	for _, f := range []agenttrail.Filter{{Since: h, Until: h.Add(6 * time.Hour)}, {Since: h.Add(time.Minute), Until: h.Add(3*time.Hour + time.Minute)}} {
		var want int64
		for _, e := range events {
			if f.Match(&e) {
				want++
			}
		}
		got, err := s.Series(t.Context(), f, agenttrail.Hour, agenttrail.DimModel)
		if err != nil {
			t.Fatalf("Series(%s) error: %v", filterString(f), err)
		}
		var count int64
		for _, b := range got {
			count += b.Count
		}
		if count != want {
			t.Errorf("Series(%s) counts %d events, want %d", filterString(f), count, want)
		}
	}
	for _, bad := range []struct {
		tokens int64
		cost   float64
	}{{agenttrail.MaxLLMTokens + 1, 0}, {math.MaxInt64, 0}, {0, 1e308}, {0, agenttrail.MaxLLMCostUSD * 1.5}} {
		e := usageEvent(t, "bad", h, bad.tokens, bad.cost)
		if err := e.Validate(h); agenttrail.ErrorCode(err) != agenttrail.EINVALID {
			t.Errorf("Validate(usage %d tokens, cost %v) = %v, want EINVALID", bad.tokens, bad.cost, err)
		}
	}
}

// testUsageSaturates appends, unvalidated, usage whose sums overflow an
// int64: a store never wraps around or fails a later read for it; its
// token sums saturate at math.MaxInt64, on the rollup path and on the
// events path, batch after batch.
func testUsageSaturates(t *testing.T, s agenttrail.Store) {
	h := Base().Truncate(time.Hour)
	for i := range 4 {
		// Two batches into one rollup row, two events in one batch.
		batch := []agenttrail.Event{
			usageEvent(t, fmt.Sprintf("s-%d-a", i), h.Add(time.Duration(i)*time.Minute), math.MaxInt64/2+1, 1),
			usageEvent(t, fmt.Sprintf("s-%d-b", i), h.Add(time.Duration(i)*time.Minute+time.Second), math.MaxInt64/2+1, 1),
		}
		if _, err := s.Append(t.Context(), batch); err != nil {
			t.Fatalf("Append(usage that overflows a sum) = %v, want it stored", err)
		}
	}
	for _, f := range []agenttrail.Filter{{}, {Since: h.Add(30 * time.Second), Until: h.Add(time.Hour)}} {
		got, err := s.Aggregate(t.Context(), f, agenttrail.DimModel)
		if err != nil || len(got) != 1 {
			t.Fatalf("Aggregate(%s, by model) over overflowing sums = %+v, %v; want one bucket", filterString(f), got, err)
		}
		if b := got[0]; b.InputTokens != math.MaxInt64 || b.ReasoningTokens != math.MaxInt64 {
			t.Errorf("Aggregate(%s, by model) = %+v, want token sums saturated at %d", filterString(f), b, int64(math.MaxInt64))
		}
		f.Since, f.Until = h.Add(-time.Hour), h.Add(49*time.Hour)
		if _, err := s.Series(t.Context(), f, agenttrail.Day, agenttrail.DimModel); err != nil {
			t.Errorf("Series(%s) over overflowing sums error: %v", filterString(f), err)
		}
	}
}
