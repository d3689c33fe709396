package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Scope is who writes a batch, and so what the batch may hold.
type Scope struct {
	// DefaultOrg is the org of events that name none; "" means
	// agenttrail.DefaultOrg.
	DefaultOrg string
	// Org, when set, is the one org the writer may write to: an event of
	// any other org is rejected. A token scoped to an org writes with
	// DefaultOrg and Org both set to it.
	Org string
	// Server marks the server's own events: its audit of reads and token
	// changes, and retention's record of what it deleted. Only they may
	// have source "audit", so that no token can forge the trail's record
	// of itself, and their ids all begin with ServerIDPrefix, which no
	// other writer may use, so that no token can claim the id of a record
	// the server is yet to write (and have it dropped as a duplicate).
	Server bool
}

// Result is what Write did with a batch: how many of its valid events were
// stored, found already stored, or spooled (AppendResult), and which events
// were rejected, in index order.
type Result struct {
	agenttrail.AppendResult
	Rejected []Rejection
}

// Accepted returns how many events are durable: stored or spooled.
func (r Result) Accepted() int { return r.Inserted + r.Spooled }

// Rejection is one event of a batch that Write refused: its index in the
// batch and why, an *agenttrail.Error naming the field at fault (EINVALID,
// or EFORBIDDEN for an org or a source the writer may not write).
type Rejection struct {
	Index int
	Err   error
}

// Write is the one write path of agenttrail: everything stored, whether it
// came over HTTP or from the server itself, passes through it. It
// normalizes each event for sc (defaults, org), checks it against sc,
// validates it, redacts it, and commits the valid ones through the
// pipeline, answering once they are durable. An event that fails a check is
// rejected by index and costs the others nothing.
//
// Write works on events in place: it changes them and moves the valid ones
// to the front of the slice, so afterwards the slice no longer holds a
// rejected event at its index. Its errors are those of the queue and the
// store (EUNAVAILABLE when the queue is full, the store fails or ctx ends
// first; see Run); rejections are not errors.
func (p *Pipeline) Write(ctx context.Context, events []agenttrail.Event, sc Scope) (Result, error) {
	now := p.cfg.Now()
	var res Result
	good := events[:0] // compacted in place: writes never pass reads
	for i := range events {
		ev := &events[i]
		if err := p.check(ev, sc, now); err != nil {
			res.Rejected = append(res.Rejected, Rejection{Index: i, Err: err})
			continue
		}
		p.cfg.Redactor.Event(ev) // after Validate: markers may lengthen fields
		good = append(good, *ev)
	}
	appended, refused, err := p.submit(ctx, good)
	res.AppendResult = appended
	if len(refused) > 0 {
		res.Rejected = mergeRejections(res.Rejected, refused, len(events))
	}
	return res, err
}

// mergeRejections adds to checked, the rejections of a batch of n events
// before it was compacted, the rejections refused of the compacted batch,
// and returns them all in index order.
func mergeRejections(checked, refused []Rejection, n int) []Rejection {
	orig := make([]int, 0, n-len(checked)) // compacted index -> batch index
	next := 0
	for i := 0; i < n; i++ {
		if next < len(checked) && checked[next].Index == i {
			next++
			continue
		}
		orig = append(orig, i)
	}
	for _, r := range refused {
		checked = append(checked, Rejection{Index: orig[r.Index], Err: r.Err})
	}
	slices.SortFunc(checked, func(a, b Rejection) int { return a.Index - b.Index })
	return checked
}

// ServerIDPrefix begins the id of every event the server writes itself
// (Scope.Server): Write adds it to their ids and refuses it from everyone
// else, so the server's ids and the clients' never meet.
const ServerIDPrefix = "agenttrail:"

// check normalizes ev for sc and checks it.
func (p *Pipeline) check(ev *agenttrail.Event, sc Scope, now time.Time) error {
	if sc.Server {
		if ev.ID == "" {
			ev.ID = agenttrail.NewID(now)
		}
		if !strings.HasPrefix(ev.ID, ServerIDPrefix) {
			ev.ID = ServerIDPrefix + ev.ID
		}
	} else if strings.HasPrefix(ev.ID, ServerIDPrefix) {
		return &agenttrail.Error{Code: agenttrail.EFORBIDDEN, Field: "id", Message: fmt.Sprintf("ids beginning with %q are reserved for the trail's own events", ServerIDPrefix)}
	}
	ev.Normalize(now, sc.DefaultOrg)
	if sc.Org != "" && ev.Org != sc.Org {
		return &agenttrail.Error{Code: agenttrail.EFORBIDDEN, Field: "org", Message: fmt.Sprintf("the caller may only write to org %q", sc.Org)}
	}
	if ev.Source == agenttrail.SourceAudit && !sc.Server {
		return &agenttrail.Error{Code: agenttrail.EFORBIDDEN, Field: "source", Message: fmt.Sprintf("%q is reserved for the trail's own events", agenttrail.SourceAudit)}
	}
	if err := ev.Validate(now); err != nil {
		return err
	}
	return p.cfg.Redactor.Identifiers(ev)
}

// Commit commits events that an ingest node already passed through Write's
// checks and redaction (they come from the cluster's stream, see package
// cluster): they are queued for the writer as they are, without being
// checked again, and Commit answers once they are committed. Their store
// deduplicates them on org and id, so events delivered twice are stored
// once. refused lists, by index into events, the ones the store refused.
func (p *Pipeline) Commit(ctx context.Context, events []agenttrail.Event) (agenttrail.AppendResult, []Rejection, error) {
	return p.submit(ctx, events)
}
