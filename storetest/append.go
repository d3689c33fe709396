package storetest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

func testAppend(t *testing.T, s agenttrail.Store) {
	ctx := t.Context()
	if res, err := s.Append(ctx, nil); err != nil || res != (agenttrail.AppendResult{}) {
		t.Fatalf("Append(no events) = %+v, %v, want zero result, nil", res, err)
	}
	events := Events(1, 300, Base(), 48*time.Hour)
	first := append([]agenttrail.Event(nil), events[:200]...)
	res, err := s.Append(ctx, first)
	if err != nil || res.Inserted != 200 || res.Duplicates != 0 {
		t.Fatalf("Append(200 new) = %+v, %v, want 200 inserted", res, err)
	}
	checkIncreasing(t, first, 0)

	// A second batch: 50 already stored (sent again with other content,
	// which must not overwrite), then 100 new ones.
	second := append([]agenttrail.Event(nil), events[150:300]...)
	for i := 0; i < 50; i++ {
		second[i].Description = "overwritten?"
	}
	res, err = s.Append(ctx, second)
	if err != nil || res.Inserted != 100 || res.Duplicates != 50 {
		t.Fatalf("Append(50 stored + 100 new) = %+v, %v, want 100 inserted, 50 duplicates", res, err)
	}
	for i := 0; i < 50; i++ {
		if second[i].Seq != 0 {
			t.Errorf("Append: duplicate %d got seq %d, want 0", i, second[i].Seq)
		}
	}
	checkIncreasing(t, second[50:], first[len(first)-1].Seq)

	stored := append(first, second[50:]...)
	got := all(t, s, agenttrail.Filter{})
	checkSeqs(t, "Query(all, seq)", got, stored)
	for i := range got {
		if d := DiffEvent(&got[i], &stored[i]); d != "" {
			t.Fatalf("Query(all)[%d]: %s", i, d)
		}
	}

	// Re-sending a whole batch stores nothing.
	again := append([]agenttrail.Event(nil), events[:100]...)
	res, err = s.Append(ctx, again)
	if err != nil || res.Inserted != 0 || res.Duplicates != 100 {
		t.Fatalf("Append(100 stored) = %+v, %v, want 0 inserted, 100 duplicates", res, err)
	}
	if n := len(all(t, s, agenttrail.Filter{})); n != 300 {
		t.Fatalf("Query(all) after re-sending = %d events, want 300", n)
	}
}

// checkIncreasing fails t unless the events got seqs above after, strictly
// increasing in batch order.
func checkIncreasing(t *testing.T, events []agenttrail.Event, after int64) {
	t.Helper()
	prev := after
	for i := range events {
		if events[i].Seq <= prev {
			t.Fatalf("Append: event %d got seq %d, want > %d (increasing in batch order)", i, events[i].Seq, prev)
		}
		prev = events[i].Seq
	}
}

func testAppendDedupWithinBatch(t *testing.T, s agenttrail.Store) {
	events := Events(2, 10, Base(), time.Hour)
	batch := append([]agenttrail.Event(nil), events...)
	dup := events[3]
	dup.Description = "second copy"
	batch = append(batch, dup, events[7], events[3])
	res, err := s.Append(t.Context(), batch)
	if err != nil || res.Inserted != 10 || res.Duplicates != 3 {
		t.Fatalf("Append(10 + 3 repeated) = %+v, %v, want 10 inserted, 3 duplicates", res, err)
	}
	checkIncreasing(t, batch[:10], 0)
	for i := 10; i < len(batch); i++ {
		if batch[i].Seq != 0 {
			t.Errorf("Append: repeated event %d got seq %d, want 0", i, batch[i].Seq)
		}
	}
	got, err := s.Get(t.Context(), events[3].ID, agenttrail.Filter{})
	if err != nil {
		t.Fatalf("Get(%q) error: %v", events[3].ID, err)
	}
	if got.Description != events[3].Description {
		t.Errorf("Get(%q).Description = %q, want the first copy's %q", events[3].ID, got.Description, events[3].Description)
	}
}

func testAppendOrgs(t *testing.T, s agenttrail.Store) {
	a := Events(3, 5, Base(), time.Hour)
	b := append([]agenttrail.Event(nil), a...)
	for i := range a {
		a[i].Org, b[i].Org = "org-a", "org-b"
	}
	// Same ids in one batch, two orgs: ten distinct events.
	batch := append(append([]agenttrail.Event(nil), a...), b...)
	res, err := s.Append(t.Context(), batch)
	if err != nil || res.Inserted != 10 || res.Duplicates != 0 {
		t.Fatalf("Append(5 ids in 2 orgs) = %+v, %v, want 10 inserted", res, err)
	}
	res, err = s.Append(t.Context(), append([]agenttrail.Event(nil), b...))
	if err != nil || res.Inserted != 0 || res.Duplicates != 5 {
		t.Fatalf("Append(org-b again) = %+v, %v, want 5 duplicates", res, err)
	}
	for _, org := range []string{"org-a", "org-b"} {
		if n := len(all(t, s, agenttrail.Filter{Org: []string{org}})); n != 5 {
			t.Errorf("Query(org=%s) = %d events, want 5", org, n)
		}
	}
}

func testGet(t *testing.T, s agenttrail.Store) {
	events := AppendAll(t, s, Events(4, 50, Base(), time.Hour), 50)
	// The same id in another org, stored later.
	twin := events[10]
	twin.Org, twin.Description = "zz-other", "the twin"
	twin = AppendAll(t, s, []agenttrail.Event{twin}, 1)[0]

	ctx := t.Context()
	for _, i := range []int{0, 25, 49} {
		got, err := s.Get(ctx, events[i].ID, agenttrail.Filter{})
		if err != nil {
			t.Fatalf("Get(%q) error: %v", events[i].ID, err)
		}
		if d := DiffEvent(&got, &events[i]); d != "" {
			t.Errorf("Get(%q): %s", events[i].ID, d)
		}
	}
	id := events[10].ID
	tests := []struct {
		name string
		f    agenttrail.Filter
		want *agenttrail.Event // nil: not found
	}{
		{"any org: lowest seq", agenttrail.Filter{}, &events[10]},
		{"own org", agenttrail.Filter{Org: []string{events[10].Org}}, &events[10]},
		{"twin's org", agenttrail.Filter{Org: []string{"zz-other"}}, &twin},
		{"both orgs", agenttrail.Filter{Org: []string{"zz-other", events[10].Org}}, &events[10]},
		{"org without it", agenttrail.Filter{Org: []string{"nobody"}}, nil},
		{"other source", agenttrail.Filter{Org: []string{"zz-other"}, Source: []string{"no-such-source"}}, nil},
	}
	for _, tc := range tests {
		got, err := s.Get(ctx, id, tc.f)
		if tc.want == nil {
			if code := agenttrail.ErrorCode(err); code != agenttrail.ENOTFOUND {
				t.Errorf("Get(%q, %s) error code = %q (%v), want %q", id, tc.name, code, err, agenttrail.ENOTFOUND)
			}
			continue
		}
		if err != nil {
			t.Errorf("Get(%q, %s) error: %v", id, tc.name, err)
			continue
		}
		if d := DiffEvent(&got, tc.want); d != "" {
			t.Errorf("Get(%q, %s): %s", id, tc.name, d)
		}
	}
	_, err := s.Get(ctx, "no-such-id", agenttrail.Filter{})
	if code := agenttrail.ErrorCode(err); code != agenttrail.ENOTFOUND {
		t.Errorf("Get(no-such-id) error code = %q (%v), want %q", code, err, agenttrail.ENOTFOUND)
	}
}

func testRoundTrip(t *testing.T, s agenttrail.Store) {
	now := Base()
	cost := 0.012345
	full := agenttrail.Event{
		ID: "every-field", Time: now.Add(123456789 * time.Nanosecond), DurationMS: 1234.5,
		ActorType: agenttrail.ActorUser, ActorID: "ünïcode-user@例え.jp", ActorName: "Zoë 😀 \"quoted\" 'single' \\back",
		Source: agenttrail.SourceLLM, Action: "chat.completions — résumé 日本語", ResourceType: agenttrail.ResourceTypeModel,
		ResourceID: "claude/ñ/ß/∑", Result: agenttrail.ResultFailure, StatusCode: 429,
		Description: "multi\nline\ttext with emoji 🚀 and RTL עברית and NUL-free", Org: "org.with-dots_1",
		Project: "proj_1", ProducerID: "producer-1", ProducerSeq: 9007199254740993,
		TraceID: "ffffffffffffffffffffffffffffffff", SpanID: "0000000000000001", ParentSpanID: "ffffffffffffffff",
		SessionID:  strings.Repeat("セ", 85) + "s", // 256 bytes, the limit
		ReceivedAt: now.Add(time.Second + 987654*time.Nanosecond),
	}
	if err := full.SetLLM(agenttrail.LLM{Provider: "anthropic", Model: "claude-sonnet-4", InputTokens: agenttrail.MaxLLMTokens,
		OutputTokens: 2, CacheReadTokens: 3, CacheWriteTokens: 4, ReasoningTokens: 5, CostUSD: &cost, Stream: true}); err != nil {
		t.Fatal(err)
	}
	if err := full.SetMetadata("extra", map[string]any{"nested": []any{1, "two", nil, true, 1.5, map[string]any{"k": "ü"}}}); err != nil {
		t.Fatal(err)
	}
	minimal := agenttrail.Event{
		ID: "minimal", Time: now, ActorType: agenttrail.ActorSystem, ActorID: "s",
		Source: "custom-source-9", Action: "x", Result: agenttrail.ResultSuccess, Org: "o", ReceivedAt: now,
	}
	for _, e := range []*agenttrail.Event{&full, &minimal} {
		if err := e.Validate(now); err != nil {
			t.Fatalf("Validate(%s): %v", e.ID, err)
		}
	}
	stored := AppendAll(t, s, []agenttrail.Event{full, minimal}, 2)
	for _, want := range stored {
		got, err := s.Get(t.Context(), want.ID, agenttrail.Filter{})
		if err != nil {
			t.Fatalf("Get(%q) error: %v", want.ID, err)
		}
		if d := DiffEvent(&got, &want); d != "" {
			t.Errorf("Get(%q) round trip: %s", want.ID, d)
		}
		if len(want.Metadata) == 0 && len(got.Metadata) != 0 && string(got.Metadata) != "null" {
			t.Errorf("Get(%q).Metadata = %s, want none", want.ID, got.Metadata)
		}
		gl, gok := got.LLM()
		wl, wok := want.LLM()
		if gok != wok || gl.InputTokens != wl.InputTokens || gl.Model != wl.Model || gl.Cost() != wl.Cost() {
			t.Errorf("Get(%q).LLM() = %+v %v, want %+v %v", want.ID, gl, gok, wl, wok)
		}
	}
	page, err := s.Query(t.Context(), agenttrail.Query{Sort: agenttrail.SortTimeAsc, Limit: 10})
	if err != nil || len(page.Events) != 2 {
		t.Fatalf("Query(all) = %d events, %v, want 2", len(page.Events), err)
	}
	if d := DiffEvent(&page.Events[1], &stored[0]); d != "" {
		t.Errorf("Query round trip: %s", d)
	}
}

func testLargeMetadata(t *testing.T, s agenttrail.Store) {
	now := Base()
	var sb strings.Builder
	for sb.Len() < 500_000 {
		sb.WriteString("line of captured stdout with ünïcode ☃ and \"quotes\" \\ and \t tabs\n")
	}
	e := agenttrail.Event{
		ID: "big", Time: now, ActorType: agenttrail.ActorAgent, ActorID: "a", Source: agenttrail.SourceShell,
		Action: "shell_exec", Result: agenttrail.ResultSuccess, Org: "o", ReceivedAt: now,
	}
	if err := e.SetMetadata("shell", map[string]any{"command": "cat", "stdout": sb.String(), "truncated": true}); err != nil {
		t.Fatal(err)
	}
	if err := e.Validate(now); err != nil {
		t.Fatal(err)
	}
	stored := AppendAll(t, s, []agenttrail.Event{e}, 1)[0]
	got, err := s.Get(t.Context(), "big", agenttrail.Filter{})
	if err != nil {
		t.Fatalf("Get(big) error: %v", err)
	}
	if d := DiffEvent(&got, &stored); d != "" {
		t.Fatalf("Get(big): %s", d)
	}
	var m struct {
		Shell struct {
			Stdout string `json:"stdout"`
		} `json:"shell"`
	}
	if err := json.Unmarshal(got.Metadata, &m); err != nil || m.Shell.Stdout != sb.String() {
		t.Errorf("Get(big).Metadata stdout = %d bytes (%v), want %d bytes byte-exact", len(m.Shell.Stdout), err, sb.Len())
	}
}
