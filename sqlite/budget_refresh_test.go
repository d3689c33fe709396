package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// TestCommitEndsReservations: the commit that stores a call's event ends
// its reservation and brings its cost into the snapshot by itself, with no
// decision or status read to set it off, so the next decision neither
// waits for a read nor counts the call twice. A reservation held only
// after its event was stored ends at a later commit's refresh.
func TestCommitEndsReservations(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if _, err := s.PutBudget(ctx, agenttrail.Budget{Name: "daily", Org: "acme", LimitNUSD: agenttrail.NanoUSD, Period: agenttrail.PeriodDay, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	reserve := func(id string, usd float64) bool {
		t.Helper()
		res, err := s.Reserve(ctx, agenttrail.Reservation{ID: id, Org: "acme", Model: "gpt-4o", AmountNUSD: agenttrail.USDToNano(usd), TTL: time.Hour}, time.Now())
		if err != nil {
			t.Fatalf("Reserve(%s): %v", id, err)
		}
		return res.Allowed
	}
	store := func(id string, usd float64) {
		t.Helper()
		e := agenttrail.Event{ID: id, Time: time.Now(), ActorType: agenttrail.ActorAgent, ActorID: "bot", Source: agenttrail.SourceLLM, Action: "chat.completions", Result: agenttrail.ResultSuccess, Org: "acme"}
		if err := e.SetLLM(agenttrail.LLM{Model: "gpt-4o", CostUSD: &usd}); err != nil {
			t.Fatal(err)
		}
		e.Normalize(time.Now(), "acme")
		if _, err := s.Append(ctx, []agenttrail.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	// ended waits for the ledger to hold no reservation id (none for ""),
	// with a snapshot read after the last commit.
	ended := func(id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.ledger.mu.Lock()
			held := false
			for k := range s.ledger.held {
				held = held || (id != "" && k.id == id)
			}
			fresh := s.ledger.changed == s.ledger.snapped
			s.ledger.mu.Unlock()
			if !held && fresh {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("reservation %q still held (or the snapshot not read since) 10 s after its event was stored", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	if !reserve("c1", 0.60) {
		t.Fatal("the first call of $0.60 against $1.00 was refused")
	}
	store("c1", 0.50)
	ended("c1")
	// $0.50 spent: a call of up to $0.45 fits, unless c1 still counted
	// as its reservation too.
	if !reserve("c2", 0.45) {
		t.Error("a call of $0.45 after $0.50 spent of $1.00 was refused: the stored call still counted as reserved")
	}
	if reserve("c3", 0.10) {
		t.Error("a call of $0.10 with $0.95 spent and reserved of $1.00 was allowed")
	}

	// c4's event lands before its reservation is held: no commit marks it,
	// and a refresh finds it stored.
	store("c4", 0.01)
	reserve("c4", 0.02)
	ended("")
	// With reservations held, a refresh is due to look for them within a
	// second; a commit must not wait for it.
	store("other", 0)
	s.ledger.mu.Lock()
	if l := &s.ledger; l.due != nil && l.dueAt.After(time.Now().Add(snapshotEvery)) {
		t.Errorf("after a commit the next refresh is due in %v, want at most %v", time.Until(l.dueAt), snapshotEvery)
	}
	s.ledger.mu.Unlock()
	ended("c4")
}
