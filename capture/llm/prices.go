package llm

import (
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/agenttrail/agenttrail"
)

// builtin holds prices.json, the built-in price table. Its "updated" field
// says when it was last checked against the providers' price pages. An
// embed.FS is read-only, so sharing it is safe.
//
//go:embed prices.json
var builtin embed.FS

// Price is what one model costs, in USD per million tokens. CacheRead and
// CacheWrite are the prices of prompt tokens read from and written to the
// provider's prompt cache.
type Price struct {
	Input      float64 `json:"input"`
	Output     float64 `json:"output"`
	CacheRead  float64 `json:"cache_read"`
	CacheWrite float64 `json:"cache_write"`
}

// Cost returns the USD cost of the usage in l:
//
//	(input*Input + output*Output + cache_read*CacheRead + cache_write*CacheWrite) / 1e6
//
// Reasoning tokens are not added: OpenAI counts them inside completion_tokens
// (and Anthropic its thinking tokens inside output_tokens), and bills them as
// output, so l.OutputTokens already holds them. Adding l.ReasoningTokens
// would bill them twice.
func (p Price) Cost(l agenttrail.LLM) float64 {
	return (float64(l.InputTokens)*p.Input +
		float64(l.OutputTokens)*p.Output +
		float64(l.CacheReadTokens)*p.CacheRead +
		float64(l.CacheWriteTokens)*p.CacheWrite) / 1e6
}

// Prices is a price table: models by name, and aliases naming another
// model. It is immutable once built and safe for concurrent use.
type Prices struct {
	models  map[string]Price
	aliases map[string]string
}

// priceFile is the JSON form of a price table. A model that leaves
// cache_read or cache_write out pays the input price for those tokens, which
// is how OpenAI bills cache writes and how a model without caching bills
// every prompt token.
type priceFile struct {
	Models map[string]struct {
		Input      *float64 `json:"input"`
		Output     *float64 `json:"output"`
		CacheRead  *float64 `json:"cache_read"`
		CacheWrite *float64 `json:"cache_write"`
	} `json:"models"`
	Aliases map[string]string `json:"aliases"`
}

// DefaultPrices returns the built-in price table. Prices change: check the
// table's "updated" date (prices.json) and extend it with LoadPrices.
//
// One price per token class is an approximation in two places: Anthropic
// bills cache writes with a one-hour TTL at twice the input price, and some
// models bill prompts over 200k tokens at a higher rate; both are priced at
// the standard rate here.
func DefaultPrices() (*Prices, error) {
	b, err := builtin.ReadFile("prices.json")
	if err != nil {
		return nil, fmt.Errorf("built-in price table: %w", err)
	}
	p, err := ParsePrices(b, nil)
	if err != nil {
		return nil, fmt.Errorf("built-in price table: %w", err)
	}
	return p, nil
}

// LoadPrices returns the built-in table overridden and extended by the JSON
// file at path, which has the form of prices.json:
//
//	{"models": {"my-model": {"input": 1, "output": 2, "cache_read": 0.1}},
//	 "aliases": {"my-alias": "my-model"}}
//
// A model in the file replaces the built-in entry of the same name.
func LoadPrices(path string) (*Prices, error) {
	base, err := DefaultPrices()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read prices: %w", err)
	}
	p, err := ParsePrices(b, base)
	if err != nil {
		return nil, fmt.Errorf("prices %s: %w", path, err)
	}
	return p, nil
}

// ParsePrices parses a JSON price table on top of base (nil for none) and
// returns the merged table; base is not modified.
func ParsePrices(b []byte, base *Prices) (*Prices, error) {
	var f priceFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse prices: %w", err)
	}
	p := &Prices{models: map[string]Price{}, aliases: map[string]string{}}
	if base != nil {
		for k, v := range base.models {
			p.models[k] = v
		}
		for k, v := range base.aliases {
			p.aliases[k] = v
		}
	}
	for name, m := range f.Models {
		if m.Input == nil || m.Output == nil {
			return nil, fmt.Errorf("model %q: input and output prices are required", name)
		}
		pr := Price{Input: *m.Input, Output: *m.Output, CacheRead: *m.Input, CacheWrite: *m.Input}
		if m.CacheRead != nil {
			pr.CacheRead = *m.CacheRead
		}
		if m.CacheWrite != nil {
			pr.CacheWrite = *m.CacheWrite
		}
		if pr.Input < 0 || pr.Output < 0 || pr.CacheRead < 0 || pr.CacheWrite < 0 {
			return nil, fmt.Errorf("model %q: prices must not be negative", name)
		}
		p.models[strings.ToLower(name)] = pr
	}
	for alias, target := range f.Aliases {
		p.aliases[strings.ToLower(alias)] = strings.ToLower(target)
	}
	for alias, target := range p.aliases {
		if _, ok := p.models[target]; !ok {
			return nil, fmt.Errorf("alias %q names %q, which has no price", alias, target)
		}
	}
	return p, nil
}

// Lookup returns the price of model and the table entry it resolved to. It
// tries, in order: the name itself, an alias, and both again without a
// date suffix ("gpt-4o-2024-08-06" → "gpt-4o", "claude-sonnet-4-5-20250929"
// → "claude-sonnet-4-5"). Names are case-insensitive; a provider prefix
// ("openai/gpt-4o") is ignored. ok is false for an unknown model.
func (p *Prices) Lookup(model string) (entry string, price Price, ok bool) {
	name := strings.ToLower(strings.TrimSpace(model))
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	for _, n := range []string{name, stripDate(name)} {
		if pr, ok := p.models[n]; ok {
			return n, pr, true
		}
		if t, ok := p.aliases[n]; ok {
			return t, p.models[t], true
		}
	}
	return "", Price{}, false
}

// stripDate removes a trailing snapshot date (agenttrail.ModelWithoutDate).
func stripDate(name string) string { return agenttrail.ModelWithoutDate(name) }
