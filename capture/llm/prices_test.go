package llm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agenttrail/agenttrail"
)

func TestLookup(t *testing.T) {
	p, err := DefaultPrices()
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]string{
		"gpt-4o":                     "gpt-4o",
		"gpt-4o-2024-08-06":          "gpt-4o",
		"gpt-4o-2024-05-13":          "gpt-4o-2024-05-13", // a snapshot priced apart
		"gpt-4o-mini-2024-07-18":     "gpt-4o-mini",
		"GPT-4.1-2025-04-14":         "gpt-4.1",
		"openai/gpt-5-mini":          "gpt-5-mini",
		"claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
		"claude-3-5-sonnet-latest":   "claude-3-5-sonnet",
		"claude-sonnet-4-0":          "claude-sonnet-4",
		"claude-opus-4-1-20250805":   "claude-opus-4-1",
		"mystery-model-7":            "",
		"gpt-4o-2024":                "",
		"":                           "",
	} {
		got, _, ok := p.Lookup(model)
		if got != want || ok != (want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", model, got, ok, want)
		}
	}
	// Spot checks against the providers' price pages.
	for model, want := range map[string]Price{
		"gpt-4o":            {Input: 2.5, Output: 10, CacheRead: 1.25, CacheWrite: 2.5},
		"gpt-4-turbo":       {Input: 10, Output: 30, CacheRead: 10, CacheWrite: 10},
		"claude-sonnet-4-5": {Input: 3, Output: 15, CacheRead: 0.3, CacheWrite: 3.75},
	} {
		if _, got, _ := p.Lookup(model); got != want {
			t.Errorf("price of %s = %+v, want %+v", model, got, want)
		}
	}
}

func TestCost(t *testing.T) {
	pr := Price{Input: 3, Output: 15, CacheRead: 0.3, CacheWrite: 3.75}
	l := agenttrail.LLM{InputTokens: 1_000_000, OutputTokens: 2_000_000, CacheReadTokens: 10_000_000, CacheWriteTokens: 4_000_000, ReasoningTokens: 500_000}
	// 3 + 30 + 3 + 15; reasoning tokens are inside output and not added.
	if got := pr.Cost(l); got != 51 {
		t.Errorf("Cost = %v, want 51", got)
	}
}

func TestLoadPrices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	os.WriteFile(path, []byte(`{"models": {"gpt-4o": {"input": 2, "output": 8}, "acme-llm": {"input": 1, "output": 2, "cache_read": 0.5}},
		"aliases": {"acme-latest": "acme-llm", "house-sonnet": "claude-sonnet-4-5"}}`), 0o600)
	p, err := LoadPrices(path)
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]Price{
		"gpt-4o-2024-08-06": {Input: 2, Output: 8, CacheRead: 2, CacheWrite: 2}, // overridden
		"acme-latest":       {Input: 1, Output: 2, CacheRead: 0.5, CacheWrite: 1},
		"house-sonnet":      {Input: 3, Output: 15, CacheRead: 0.3, CacheWrite: 3.75},
		"gpt-4o-mini":       {Input: 0.15, Output: 0.6, CacheRead: 0.075, CacheWrite: 0.15}, // built in
	} {
		if _, got, ok := p.Lookup(model); !ok || got != want {
			t.Errorf("Lookup(%q) = %+v %v, want %+v", model, got, ok, want)
		}
	}
	for name, body := range map[string]string{
		"no output":      `{"models": {"m": {"input": 1}}}`,
		"negative":       `{"models": {"m": {"input": 1, "output": -2}}}`,
		"dangling alias": `{"aliases": {"a": "nowhere"}}`,
		"not JSON":       `models: {}`,
	} {
		os.WriteFile(path, []byte(body), 0o600)
		if _, err := LoadPrices(path); err == nil {
			t.Errorf("LoadPrices accepted a table with %s", name)
		}
	}
}
