package storetest

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// checkRetained checks that s holds exactly stored, events of the three
// days from Base, and that its rollups (every aggregate and series) agree
// with them.
func checkRetained(t *testing.T, s agenttrail.Store, stored []agenttrail.Event, step string) {
	t.Helper()
	h := Base().Truncate(time.Hour)
	whole := agenttrail.Filter{Since: h.Add(-24 * time.Hour), Until: h.Add(4 * 24 * time.Hour)}
	checkSeqs(t, "Query(all) "+step, all(t, s, agenttrail.Filter{}), Select(stored, agenttrail.Query{Sort: agenttrail.SortSeq}))
	for _, by := range agenttrail.Dimensions {
		checkAggregate(t, s, stored, agenttrail.Filter{}, by)
	}
	checkAggregate(t, s, stored, agenttrail.Filter{Org: []string{"acme"}, Since: h.Add(20 * time.Hour)}, agenttrail.DimModel)
	checkSeriesCall(t, s, stored, whole, agenttrail.Hour, "")
	checkSeriesCall(t, s, stored, whole, agenttrail.Hour, agenttrail.DimSource)
	checkSeriesCall(t, s, stored, whole, agenttrail.Day, agenttrail.DimModel)
}

func testDeleteBefore(t *testing.T, s agenttrail.Store) {
	start := Base()
	h := start.Truncate(time.Hour)
	stored := AppendAll(t, s, Events(50, 2000, start, 3*24*time.Hour), 500)
	check := func(step string) {
		t.Helper()
		checkRetained(t, s, stored, step)
	}
	deleteBefore := func(cut time.Time) {
		t.Helper()
		var kept []agenttrail.Event
		want := int64(0)
		for _, e := range stored {
			if e.Time.Before(cut) {
				want++
			} else {
				kept = append(kept, e)
			}
		}
		n, err := s.DeleteBefore(t.Context(), cut)
		if err != nil || n != want {
			t.Fatalf("DeleteBefore(%v) = %d, %v, want %d", cut, n, err, want)
		}
		stored = kept
	}

	cut := start.Add(30*time.Hour + 17*time.Minute + 3*time.Second + 123456*time.Microsecond)
	deleteBefore(cut)
	check("after DeleteBefore(unaligned)")
	deleteBefore(cut) // nothing left to delete
	check("after DeleteBefore again")

	// Late events into deleted hours, the cut hour and later hours keep
	// rollups and raw counts in step.
	late := Events(51, 300, cut.Add(-3*time.Hour), 5*time.Hour)
	stored = append(stored, AppendAll(t, s, late, 300)...)
	check("after appending late events")
	deleteBefore(h.Add(40 * time.Hour))
	check("after DeleteBefore(aligned)")
	deleteBefore(h.Add(5 * 24 * time.Hour))
	check("after deleting everything")
	if len(stored) != 0 {
		t.Fatalf("model still holds %d events", len(stored))
	}
}

// testDeleteByRules applies retention rules as the model says (the first
// matching rule decides, an event no rule matches stays, nothing past
// maxSeq goes) and checks the events, the rollups, what each rule deleted,
// and that the integrity trees still hold a leaf for every event ever
// stored, deleted ones included.
func testDeleteByRules(t *testing.T, s agenttrail.Store) {
	start := Base()
	h := start.Truncate(time.Hour)
	ever := AppendAll(t, s, Events(52, 2000, start, 3*24*time.Hour), 500)
	stored := ever
	CheckTrees(t, s, ever)
	apply := func(step string, rules []agenttrail.RetentionRule, maxSeq int64) {
		t.Helper()
		want := make([]int64, len(rules))
		var kept []agenttrail.Event
		for _, e := range stored {
			i := agenttrail.RetentionRuleOf(rules, &e)
			if i >= 0 && e.Seq <= maxSeq && e.Time.Before(rules[i].Before) {
				want[i]++
				continue
			}
			kept = append(kept, e)
		}
		got, err := s.DeleteByRules(t.Context(), rules, maxSeq)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: DeleteByRules = %v, %v, want %v", step, got, err, want)
		}
		stored = kept
		checkRetained(t, s, stored, step)
	}
	// Unaligned cutoffs, rules that overlap (the first decides: acme's
	// llm-proxy events are kept by the first rule, not deleted by the
	// second), one that keeps forever, and a default; the events of the
	// last 500 seqs are held back as a required sink would hold them.
	cut := func(d time.Duration) time.Time { return start.Add(d + 17*time.Minute + 123456*time.Microsecond) }
	maxSeq := ever[len(ever)-501].Seq
	rules := []agenttrail.RetentionRule{
		{Filter: agenttrail.Filter{Org: []string{"acme"}, Source: []string{agenttrail.SourceLLM}}, Before: cut(10 * time.Hour)},
		{Filter: agenttrail.Filter{Source: []string{agenttrail.SourceLLM, agenttrail.SourceShell}}, Before: cut(50 * time.Hour)},
		{Filter: agenttrail.Filter{Project: []string{"infra"}}},
		{Filter: agenttrail.Filter{Org: []string{"globex"}, Project: []string{"web", "data"}}, Before: cut(80 * time.Hour)},
		{Before: cut(30 * time.Hour)},
	}
	apply("after DeleteByRules", rules, maxSeq)
	apply("after DeleteByRules again", rules, maxSeq)
	// The held-back events go once the sink has delivered them.
	apply("after the checkpoint moved", rules, math.MaxInt64)
	// Late events into hours already cut keep rollups and counts in step.
	late := AppendAll(t, s, Events(53, 300, cut(20*time.Hour), 40*time.Hour), 300)
	ever = append(ever, late...)
	stored = append(stored, late...)
	checkRetained(t, s, stored, "after appending late events")
	apply("after DeleteByRules on late events", rules, math.MaxInt64)
	// No rule with a cutoff deletes nothing; an aligned cutoff on one org.
	apply("after rules that keep everything", []agenttrail.RetentionRule{{Filter: agenttrail.Filter{Org: []string{"acme"}}}}, math.MaxInt64)
	apply("after an aligned cutoff", []agenttrail.RetentionRule{{Filter: agenttrail.Filter{Org: []string{"acme"}}, Before: h.Add(60 * time.Hour)}}, math.MaxInt64)
	CheckTrees(t, s, ever)
	// A rule on anything but source, org and project is refused.
	if _, err := s.DeleteByRules(t.Context(), []agenttrail.RetentionRule{{Filter: agenttrail.Filter{ActorID: []string{"x"}}, Before: h}}, math.MaxInt64); agenttrail.ErrorCode(err) != agenttrail.EINVALID {
		t.Fatalf("DeleteByRules(actor_id rule) = %v, want EINVALID", err)
	}
	// Everything, with the default rule alone.
	apply("after deleting everything", []agenttrail.RetentionRule{{Before: h.Add(6 * 24 * time.Hour)}}, math.MaxInt64)
	if len(stored) != 0 {
		t.Fatalf("model still holds %d events", len(stored))
	}
	CheckTrees(t, s, ever)
}
