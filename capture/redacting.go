package capture

import (
	"context"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/redact"
)

// Redacting is the Recorder every capture surface records through: it
// replaces the secrets in each event with its Redactor, then hands the event
// to the next Recorder. Each surface builds one in its constructor from the
// Recorder and Redactor of its Config, so whatever a caller passes, no event
// leaves a surface unredacted. It is safe for concurrent use when next is.
type Redacting struct {
	next Recorder
	r    *redact.Redactor
}

// NewRedacting returns a Recorder that redacts with r before recording to
// next. A nil r means the built-in rules (redact.Builtin): redaction is
// the default of every surface, not an option.
func NewRedacting(next Recorder, r *redact.Redactor) *Redacting {
	if r == nil {
		r = redact.Builtin()
	}
	return &Redacting{next: next, r: r}
}

// Record redacts e and records it.
func (rr *Redacting) Record(ctx context.Context, e agenttrail.Event) {
	rr.Recorded(ctx, e)
}

// Recorded records e as Record does and returns it as it was recorded, for
// surfaces that hand the event to their caller too (shell.Run).
func (rr *Redacting) Recorded(ctx context.Context, e agenttrail.Event) agenttrail.Event {
	rr.r.Event(&e)
	rr.next.Record(ctx, e)
	return e
}

// Redactor returns the redactor, for surfaces that redact text before they
// shorten it (a secret cut in half no longer looks like one), such as MCP
// argument previews and recorded LLM bodies.
func (rr *Redacting) Redactor() *redact.Redactor { return rr.r }
