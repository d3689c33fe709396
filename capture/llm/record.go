package llm

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// Bodies is what metadata.llm_bodies holds when bodies are recorded: the
// request body and the generated text, redacted, each capped at 64 KiB.
type Bodies struct {
	Request    string `json:"request,omitempty"`
	Completion string `json:"completion,omitempty"`
	Truncated  bool   `json:"truncated,omitempty"`
}

// redacted is what replaces a credential found in a recorded body.
const redacted = "[REDACTED]"

// minSecretLen is the shortest credential scrub replaces: real API keys are
// far longer, and replacing every "a" in a prompt would only garble it.
const minSecretLen = 8

// record turns the finished call into one event and hands it to the
// recorder, which redacts it. cred is the credential the agent presented,
// scrubbed from the recorded bodies whatever the redactor's patterns match.
func (p *Proxy) record(ctx context.Context, c *call, cred string) {
	end := p.now()
	e := agenttrail.Event{
		Time:       c.start,
		DurationMS: float64(end.Sub(c.start).Microseconds()) / 1000,
		Source:     agenttrail.SourceLLM,
		Action:     c.ep.action,
		StatusCode: c.status,
	}
	c.actor.Apply(&e)
	c.span.Apply(&e)

	switch {
	case c.unreachable:
		e.Result = agenttrail.ResultError
	case c.status == 0:
		e.Result, e.Description = agenttrail.ResultError, "the client went away before the upstream answered"
	case c.denied:
		e.Result = agenttrail.ResultDenied
	case c.failed && c.status < 400:
		e.Result = agenttrail.ResultFailure
	default:
		e.Result = capture.ResultOf(c.status)
	}
	if c.errMsg != "" {
		e.Description = c.errMsg
	}

	model := c.modelName()
	l := agenttrail.LLM{Provider: string(c.ep.provider), Stream: c.stream}
	if c.ep.meter != nil {
		e.ResourceType, e.ResourceID = agenttrail.ResourceTypeModel, model
		l = c.usage
		l.Provider, l.Model, l.Stream = string(c.ep.provider), model, c.stream
		l.Incomplete = c.clientGone || c.cut != nil || (c.stream && !c.done)
		if c.usageSeen {
			if _, price, ok := p.prices.Lookup(model); ok {
				cost := price.Cost(l)
				l.CostUSD = &cost
			} else {
				l.CostUnknown = true
				p.metrics.unknownModel.WithLabelValues(model).Inc()
			}
		}
	} else {
		l.Incomplete = c.clientGone || c.cut != nil
	}
	if c.cut != nil && e.Description == "" {
		e.Description = fmt.Sprintf("upstream response cut: %v", c.cut)
	}
	if e.Description == "" {
		e.Description = describe(c, l, e.Action)
	} else if c.ep.meter != nil && model != "" {
		e.Description = model + ": " + e.Description
	}
	p.settle(ctx, c, &e, &l)
	if err := e.SetLLM(l); err != nil {
		p.logger.Error("llm proxy: encode usage", "err", err)
	}
	if p.bodies && c.ep.meter != nil {
		b := Bodies{
			Request:    scrub(c.request, cred, p.keys),
			Completion: scrub(c.completion, cred, p.keys),
			Truncated:  c.truncated || len(c.request) > maxBodyRecord,
		}
		b.Request = truncateUTF8(b.Request, maxBodyRecord)
		if err := e.SetMetadata("llm_bodies", b); err != nil {
			p.logger.Error("llm proxy: encode bodies", "err", err)
		}
	}
	p.rec.Record(ctx, e)
}

// describe is one short sentence for a call that went through: "gpt-4o:
// 1,200 in / 300 out tokens, $0.0048".
func describe(c *call, l agenttrail.LLM, action string) string {
	if c.ep.meter == nil {
		return fmt.Sprintf("%s: %d", action, c.status)
	}
	name := cmp.Or(l.Model, action)
	var b strings.Builder
	switch {
	case !c.usageSeen:
		fmt.Fprintf(&b, "%s: %d, no usage reported", name, c.status)
	default:
		fmt.Fprintf(&b, "%s: %s in / %s out tokens", name, thousands(l.InputTokens), thousands(l.OutputTokens))
		if l.CacheReadTokens > 0 {
			fmt.Fprintf(&b, " (+%s cache read)", thousands(l.CacheReadTokens))
		}
		switch {
		case l.CostUSD != nil:
			fmt.Fprintf(&b, ", $%.4f", *l.CostUSD)
		case l.CostUnknown:
			b.WriteString(", cost unknown (no price for the model)")
		}
	}
	if c.status >= 400 {
		fmt.Fprintf(&b, ": %d", c.status)
	}
	if l.Incomplete {
		b.WriteString(", incomplete")
	}
	return b.String()
}

// thousands formats n with commas: 1,200.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// scrub returns b as a string with the agent's credential and every
// configured upstream key replaced: the proxy knows these secrets exactly,
// so it removes them even where no redaction pattern would match.
func scrub(b []byte, cred string, keys map[string]string) string {
	if len(b) == 0 {
		return ""
	}
	if len(cred) >= minSecretLen {
		b = bytes.ReplaceAll(b, []byte(cred), []byte(redacted))
	}
	for _, k := range keys {
		if len(k) >= minSecretLen {
			b = bytes.ReplaceAll(b, []byte(k), []byte(redacted))
		}
	}
	return string(b)
}
