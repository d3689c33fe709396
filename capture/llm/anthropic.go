package llm

import "encoding/json"

// messagesUsage is the usage object of an Anthropic message. Unlike
// OpenAI's, its counters are disjoint: input_tokens leaves out the tokens
// read from or written to the prompt cache. output_tokens includes the
// thinking tokens.
type messagesUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokensDetails      struct {
		ThinkingTokens int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
}

func (u *messagesUsage) apply(c *call) {
	c.usage.InputTokens = u.InputTokens
	c.usage.OutputTokens = u.OutputTokens
	c.usage.CacheWriteTokens = u.CacheCreationInputTokens
	c.usage.CacheReadTokens = u.CacheReadInputTokens
	c.usage.ReasoningTokens = u.OutputTokensDetails.ThinkingTokens
	c.usageSeen = true
}

// deltaUsage is the usage of a message_delta event. Its counters are
// cumulative and any may be absent (older API versions send only
// output_tokens), so only those present replace what message_start said.
type deltaUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokensDetails      *struct {
		ThinkingTokens *int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
}

func (u *deltaUsage) apply(c *call) {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.usage.InputTokens, u.InputTokens)
	set(&c.usage.OutputTokens, u.OutputTokens)
	set(&c.usage.CacheWriteTokens, u.CacheCreationInputTokens)
	set(&c.usage.CacheReadTokens, u.CacheReadInputTokens)
	if d := u.OutputTokensDetails; d != nil {
		set(&c.usage.ReasoningTokens, d.ThinkingTokens)
	}
	c.usageSeen = true
}

// messagesMeter meters POST /v1/messages.
type messagesMeter struct{}

func (messagesMeter) body(c *call, b []byte) {
	var m struct {
		Model   string `json:"model"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		Usage *messagesUsage `json:"usage"`
	}
	if json.Unmarshal(b, &m) != nil {
		return
	}
	c.setModel(m.Model)
	for _, b := range m.Content {
		if b.Type == "text" {
			c.addCompletion(b.Text)
		}
	}
	if m.Usage != nil {
		m.Usage.apply(c)
	}
}

func (messagesMeter) event(c *call, ev *sseEvent) bool {
	var e struct {
		Type    string `json:"type"`
		Message *struct {
			Model string         `json:"model"`
			Usage *messagesUsage `json:"usage"`
		} `json:"message"`
		Delta *struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"delta"`
		Usage *deltaUsage `json:"usage"`
	}
	if json.Unmarshal(ev.Data, &e) != nil {
		return true
	}
	switch e.Type {
	case "message_start":
		if m := e.Message; m != nil {
			c.setModel(m.Model)
			if m.Usage != nil {
				m.Usage.apply(c)
			}
		}
	case "content_block_delta":
		if e.Delta != nil && e.Delta.Type == "text_delta" {
			c.addCompletion(e.Delta.Text)
		}
	case "message_delta":
		if e.Usage != nil {
			e.Usage.apply(c)
		}
	case "message_stop":
		c.done = true
	case "error":
		c.failed = true
	}
	return true
}
