package llm

import (
	"bytes"
	"encoding/json"
)

// meter reads the usage of one API's responses into a call.
type meter interface {
	// body reads a complete, non-streamed response body.
	body(c *call, b []byte)
	// event reads one stream event and says whether to forward it. It may
	// rewrite ev.Raw.
	event(c *call, ev *sseEvent) (forward bool)
}

// chatUsage is the usage object of an OpenAI chat completion.
// prompt_tokens counts every prompt token, the cached ones and those
// written to the cache included; completion_tokens counts the reasoning
// tokens too.
type chatUsage struct {
	PromptTokens            int64         `json:"prompt_tokens"`
	CompletionTokens        int64         `json:"completion_tokens"`
	PromptTokensDetails     inputDetails  `json:"prompt_tokens_details"`
	CompletionTokensDetails outputDetails `json:"completion_tokens_details"`
}

// inputDetails and outputDetails break an OpenAI usage's input and output
// counts down, under the same names in both APIs.
type inputDetails struct {
	CachedTokens     int64 `json:"cached_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
}

type outputDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

func (u *chatUsage) apply(c *call) {
	applyOpenAI(c, u.PromptTokens, u.PromptTokensDetails.CachedTokens, u.PromptTokensDetails.CacheWriteTokens,
		u.CompletionTokens, u.CompletionTokensDetails.ReasoningTokens)
}

// responsesUsage is the usage object of an OpenAI response (Responses API),
// with the same inclusive counting as chatUsage under other names.
type responsesUsage struct {
	InputTokens         int64         `json:"input_tokens"`
	OutputTokens        int64         `json:"output_tokens"`
	InputTokensDetails  inputDetails  `json:"input_tokens_details"`
	OutputTokensDetails outputDetails `json:"output_tokens_details"`
}

func (u *responsesUsage) apply(c *call) {
	applyOpenAI(c, u.InputTokens, u.InputTokensDetails.CachedTokens, u.InputTokensDetails.CacheWriteTokens,
		u.OutputTokens, u.OutputTokensDetails.ReasoningTokens)
}

// applyOpenAI splits OpenAI's inclusive prompt count so that the recorded
// counters are disjoint, as Anthropic reports them: input_tokens are the
// prompt tokens billed at the input price, without the cache reads and
// writes counted apart. Output keeps the reasoning tokens, which OpenAI
// bills as output; reasoning_tokens is a breakdown, never added to the cost.
func applyOpenAI(c *call, prompt, cached, cacheWrite, completion, reasoning int64) {
	c.usage.CacheReadTokens = cached
	c.usage.CacheWriteTokens = cacheWrite
	c.usage.InputTokens = max(0, prompt-cached-cacheWrite)
	c.usage.OutputTokens = completion
	c.usage.ReasoningTokens = reasoning
	c.usageSeen = true
}

// chatMeter meters POST /v1/chat/completions.
type chatMeter struct{}

func (chatMeter) body(c *call, b []byte) {
	var r struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
				Refusal string `json:"refusal"`
			} `json:"message"`
		} `json:"choices"`
		Usage *chatUsage `json:"usage"`
	}
	if json.Unmarshal(b, &r) != nil {
		return
	}
	c.setModel(r.Model)
	for _, ch := range r.Choices {
		c.addCompletion(ch.Message.Content)
		c.addCompletion(ch.Message.Refusal)
	}
	if r.Usage != nil {
		r.Usage.apply(c)
	}
}

func (chatMeter) event(c *call, ev *sseEvent) bool {
	if bytes.Equal(ev.Data, []byte("[DONE]")) {
		c.done = true
		return true
	}
	var ch struct {
		Model   string `json:"model"`
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
		Usage *chatUsage      `json:"usage"`
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(ev.Data, &ch) != nil {
		return true
	}
	c.setModel(ch.Model)
	if len(ch.Error) > 0 && !bytes.Equal(ch.Error, []byte("null")) {
		c.failed = true
	}
	for _, choice := range ch.Choices {
		c.addCompletion(choice.Delta.Content)
	}
	if ch.Usage != nil {
		ch.Usage.apply(c)
		if c.injected && len(ch.Choices) == 0 {
			return false // the usage-only chunk the client did not ask for
		}
	}
	if c.injected {
		ev.Raw = stripUsageNull(ev.Raw)
	}
	return true
}

// stripUsageNull removes the `"usage":null` member that OpenAI adds to
// every chunk of a stream that asked for usage, with its separating comma,
// so a client that did not ask sees the chunks it would have seen. Inside a
// JSON string a quote is escaped, so the pattern only matches a member.
func stripUsageNull(raw []byte) []byte {
	key := []byte(`"usage"`)
	i := bytes.Index(raw, key)
	if i < 0 {
		return raw
	}
	j := skipSpace(raw, i+len(key))
	if j >= len(raw) || raw[j] != ':' {
		return raw
	}
	j = skipSpace(raw, j+1)
	if !bytes.HasPrefix(raw[j:], []byte("null")) {
		return raw
	}
	end := j + len("null")
	k := i - 1
	for k >= 0 && isSpace(raw[k]) {
		k--
	}
	switch {
	case k >= 0 && raw[k] == ',':
		i = k
	default:
		if e := skipSpace(raw, end); e < len(raw) && raw[e] == ',' {
			end = e + 1
		}
	}
	return append(raw[:i], raw[end:]...)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// responsesMeter meters POST /v1/responses.
type responsesMeter struct{}

// responseObject is the part of a Responses API response the proxy reads.
type responseObject struct {
	Model  string `json:"model"`
	Output []struct {
		Type    string `json:"type"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"output"`
	Usage *responsesUsage `json:"usage"`
}

func (r *responseObject) apply(c *call, withText bool) {
	c.setModel(r.Model)
	if withText {
		for _, o := range r.Output {
			for _, p := range o.Content {
				if p.Type == "output_text" {
					c.addCompletion(p.Text)
				}
			}
		}
	}
	if r.Usage != nil {
		r.Usage.apply(c)
	}
}

func (responsesMeter) body(c *call, b []byte) {
	var r responseObject
	if json.Unmarshal(b, &r) == nil {
		r.apply(c, true)
	}
}

func (responsesMeter) event(c *call, ev *sseEvent) bool {
	var e struct {
		Type     string          `json:"type"`
		Response *responseObject `json:"response"`
		Delta    json.RawMessage `json:"delta"`
	}
	if json.Unmarshal(ev.Data, &e) != nil {
		return true
	}
	switch e.Type {
	case "response.output_text.delta":
		var s string
		if json.Unmarshal(e.Delta, &s) == nil {
			c.addCompletion(s)
		}
	case "response.completed", "response.incomplete":
		c.done = true
	case "response.failed":
		c.done, c.failed = true, true
	case "error":
		c.failed = true
	}
	if e.Response != nil {
		// The text arrived as deltas; the final response repeats it.
		e.Response.apply(c, false)
	}
	return true
}
