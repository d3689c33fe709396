package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/sqlite"
)

// BenchmarkReserve measures one reservation and its settlement against a
// daily budget, with each call's event stored after it, the store's share of the latency a budget check adds.
func BenchmarkReserve(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "trail.db"), sqlite.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.PutBudget(ctx, agenttrail.Budget{Name: "daily", Org: "acme", LimitNUSD: 1e15, Period: agenttrail.PeriodDay}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprint("r", i)
		res, err := s.Reserve(ctx, agenttrail.Reservation{ID: id, Org: "acme", ActorID: "bot", Model: "gpt-4o", AmountNUSD: 1000, TTL: time.Minute}, now)
		if err != nil || !res.Allowed {
			b.Fatal(res, err)
		}
		if err := s.Settle(ctx, "acme", id, 500, now); err != nil {
			b.Fatal(err)
		}
		// The call's event lands, as it does a moment after the call.
		b.StopTimer()
		e := agenttrail.Event{ID: id, Time: now, ActorType: agenttrail.ActorAgent, ActorID: "bot", Source: agenttrail.SourceLLM, Action: "chat.completions", Result: agenttrail.ResultSuccess, Org: "acme"}
		cost := 0.0000005
		e.SetLLM(agenttrail.LLM{Model: "gpt-4o", CostUSD: &cost})
		e.Normalize(now, "acme")
		if _, err := s.Append(ctx, []agenttrail.Event{e}); err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Millisecond)
		b.StartTimer()
	}
}
