package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/agenttrail/agenttrail"
)

// commit stores the events of reqs and answers each request. Only Run's
// goroutine calls it.
func (p *Pipeline) commit(ctx context.Context, reqs []*request) {
	if len(reqs) == 0 {
		return
	}
	if p.cfg.Naive {
		for _, r := range reqs {
			p.commitNaive(ctx, r)
		}
		return
	}
	batch := p.batchOf(reqs)
	start := time.Now()
	res, err := p.store.Append(ctx, batch)
	p.m.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		if len(reqs) > 1 {
			// One request's event the store refuses must not fail the
			// other requests that happened to share its batch.
			p.log.Warn("group commit failed; committing its requests one by one", "requests", len(reqs), "events", len(batch), "err", err)
			for _, r := range reqs {
				p.commit(ctx, []*request{r})
			}
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
			clear(p.buf)
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
		clear(p.buf)
	}
}

// commitNaive stores each event of r in its own Append: one transaction per
// event, the design group commit is measured against.
func (p *Pipeline) commitNaive(ctx context.Context, r *request) {
	for i := range r.events {
		start := time.Now()
		_, err := p.store.Append(ctx, r.events[i:i+1])
		p.m.commitSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			p.fail(r, err)
			return
		}
		p.m.batchEvents.Observe(1)
	}
	r.res = count(r.events)
	p.finish(r)
}

// batchOf returns the events of reqs as one slice. A lone request's own
// slice is used as is, so the store writes its Seqs where submit reads them;
// several are copied into the writer's reused buffer and read back from it.
func (p *Pipeline) batchOf(reqs []*request) []agenttrail.Event {
	if len(reqs) == 1 {
		return reqs[0].events
	}
	p.buf = p.buf[:0]
	for _, r := range reqs {
		p.buf = append(p.buf, r.events...)
	}
	return p.buf
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
