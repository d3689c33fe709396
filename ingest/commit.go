package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/agenttrail/agenttrail"
)

// commit stores the events of reqs and answers each request. Only Run's
// writers call it, each with its own buf.
func (p *Pipeline) commit(ctx context.Context, buf *[]agenttrail.Event, reqs []*request) {
	if len(reqs) == 0 {
		return
	}
	if p.cfg.Naive {
		for _, r := range reqs {
			p.commitNaive(ctx, r)
		}
		return
	}
	batch := batchOf(buf, reqs)
	start := time.Now()
	res, err := p.store.Append(ctx, batch)
	p.m.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		if len(reqs) > 1 {
			// One request's event the store refuses must not fail the
			// other requests that happened to share its batch.
			p.log.Warn("group commit failed; committing its requests one by one", "requests", len(reqs), "events", len(batch), "err", err)
			for _, r := range reqs {
				p.commit(ctx, buf, []*request{r})
			}
			return
		}
		if refusedByStore(err) && len(reqs[0].events) > 1 {
			p.log.Warn("commit failed; finding the events the store refuses", "events", len(batch), "err", err)
			p.isolate(ctx, reqs[0])
			return
		}
		p.fail(reqs[0], err)
		return
	}
	p.m.batchEvents.Observe(float64(len(batch)))
	if res.Spooled > 0 {
		// A spool took the whole batch: durable, not yet stored.
		for _, r := range reqs {
			r.res = agenttrail.AppendResult{Spooled: len(r.events)}
			p.finish(r)
		}
		if len(reqs) > 1 {
			clear(*buf)
		}
		return
	}
	inserted := 0
	off := 0
	for _, r := range reqs {
		n := len(r.events)
		r.res = count(batch[off : off+n])
		inserted += r.res.Inserted
		off += n
		p.finish(r)
	}
	if inserted != res.Inserted {
		p.log.Error("store reported a different number of inserted events than it assigned seqs to", "reported", res.Inserted, "seqs", inserted)
	}
	if len(reqs) > 1 {
		clear(*buf)
	}
}

// commitNaive stores each event of r in its own Append: one transaction per
// event, the design group commit is measured against.
func (p *Pipeline) commitNaive(ctx context.Context, r *request) {
	spooled := 0
	for i := range r.events {
		start := time.Now()
		res, err := p.store.Append(ctx, r.events[i:i+1])
		p.m.commitSeconds.Observe(time.Since(start).Seconds())
		switch {
		case err != nil && refusedByStore(err) && len(r.events) > 1:
			p.refuse(r, i, err)
			continue
		case err != nil:
			p.fail(r, err)
			return
		}
		spooled += res.Spooled
		p.m.batchEvents.Observe(1)
	}
	p.settle(r, spooled)
}

// refusedByStore reports whether err is the store refusing a value it was
// given (EINVALID, ETOOLARGE: what a Spool passes through rather than
// spooling), so that committing the events apart finds the ones it
// refuses. Any other failure is the store's, not an event's: the request
// fails whole and its sender retries.
func refusedByStore(err error) bool {
	switch agenttrail.ErrorCode(err) {
	case agenttrail.EINVALID, agenttrail.ETOOLARGE:
		return true
	}
	return false
}

// isolate commits the events of r, whose commit as a whole failed with an
// error refusedByStore, in halves, recursively, down to the single events
// the store refuses: those are rejected by index and the others stored,
// so one event no store can hold never costs its neighbours. It takes
// O(k log n) Appends for k refused events among n. When the store becomes
// unavailable midway, r fails as a whole (what was stored stays stored;
// re-sending is safe, ids deduplicate).
func (p *Pipeline) isolate(ctx context.Context, r *request) {
	spooled := 0
	var split func(lo, hi int) error
	split = func(lo, hi int) error {
		res, err := p.store.Append(ctx, r.events[lo:hi])
		switch {
		case err == nil:
			spooled += res.Spooled
			return nil
		case !refusedByStore(err):
			return err
		case hi-lo == 1:
			p.refuse(r, lo, err)
			return nil
		}
		mid := lo + (hi-lo)/2
		if err := split(lo, mid); err != nil {
			return err
		}
		return split(mid, hi)
	}
	if err := split(0, len(r.events)); err != nil {
		r.refused = nil
		p.fail(r, err)
		return
	}
	p.settle(r, spooled)
}

// refuse records that the store refused r.events[i]. Its message is the
// caller-facing one of err, never the database's own text.
func (p *Pipeline) refuse(r *request, i int, err error) {
	p.log.Warn("the store refused an event", "id", r.events[i].ID, "org", r.events[i].Org, "err", err)
	p.m.dropped.WithLabelValues(reasonStoreError).Inc()
	r.events[i].Seq = 0
	r.refused = append(r.refused, Rejection{Index: i, Err: &agenttrail.Error{
		Code: agenttrail.EINVALID, Field: "event",
		Message: "the store refused it (" + agenttrail.ErrorMessage(err) + "); nothing of it was stored", Err: err}})
}

// settle answers r after its events were committed apart: spooled of them
// went to a spool, the refused ones are rejections, and of the rest those
// with a Seq were stored and the others were duplicates.
func (p *Pipeline) settle(r *request, spooled int) {
	res := count(r.events)
	res.Duplicates -= len(r.refused)
	if spooled > 0 {
		// A spooled event has no Seq yet: count(r.events) took it for a
		// duplicate.
		res.Spooled, res.Duplicates = spooled, res.Duplicates-spooled
	}
	r.res = res
	p.finish(r)
}

// batchOf returns the events of reqs as one slice. A lone request's own
// slice is used as is, so the store writes its Seqs where submit reads them;
// several are copied into the writer's reused buffer buf and read back from
// it.
func batchOf(buf *[]agenttrail.Event, reqs []*request) []agenttrail.Event {
	if len(reqs) == 1 {
		return reqs[0].events
	}
	*buf = (*buf)[:0]
	for _, r := range reqs {
		*buf = append(*buf, r.events...)
	}
	return *buf
}

// count tells stored from skipped events: the store leaves Seq at 0 for an
// event it skipped as a duplicate.
func count(events []agenttrail.Event) agenttrail.AppendResult {
	var res agenttrail.AppendResult
	for i := range events {
		if events[i].Seq != 0 {
			res.Inserted++
		} else {
			res.Duplicates++
		}
	}
	return res
}

func (p *Pipeline) finish(r *request) {
	p.m.accepted.Add(float64(r.res.Inserted))
	p.m.duplicates.Add(float64(r.res.Duplicates))
	close(r.done)
}

func (p *Pipeline) fail(r *request, err error) {
	reason := reasonStoreError
	if errors.Is(err, ErrSpoolFull) {
		reason = reasonSpoolFull
	}
	p.m.dropped.WithLabelValues(reason).Add(float64(len(r.events)))
	switch agenttrail.ErrorCode(err) {
	case agenttrail.EINVALID, agenttrail.ETOOLARGE:
		r.err = err
	case agenttrail.EUNAVAILABLE:
		if errors.Is(err, ErrSpoolFull) {
			// The spool's own message: the caller should know why.
			p.log.Warn("commit refused: the spool is full", "events", len(r.events))
			r.err = err
			break
		}
		fallthrough
	default:
		p.log.Error("commit failed", "events", len(r.events), "err", err)
		r.err = unavailable("the store is unavailable; retry later")
	}
	close(r.done)
}
