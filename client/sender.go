package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// maxBatchBytes keeps one request well under the server's default 16 MiB
// limit; a batch may exceed it by its last event.
const maxBatchBytes = 8 << 20

// sender is the state of the goroutine that sends; only it touches sender.
type sender struct {
	enc      batchEncoder
	part     []agenttrail.Event
	failures int       // consecutive failed requests
	nextTry  time.Time // no request before this; batches go to the spool meanwhile
	down     bool

	savedSeq    int64
	loggedDrops int64
	lastDropLog time.Time
	lastRejLog  time.Time
}

func (s *sender) init(r *Recorder) {
	s.savedSeq = r.seqStart
	s.part = make([]agenttrail.Event, 0, r.cfg.BatchSize)
}

// run is the sender goroutine: it batches the queue by size and interval,
// replays the spool while the server answers, and emits heartbeats.
func (r *Recorder) run() {
	defer r.done.Done()
	s := &r.sender
	batch := make([]agenttrail.Event, 0, r.cfg.BatchSize)
	flushT := time.NewTicker(r.cfg.FlushInterval)
	defer flushT.Stop()
	retryT := time.NewTimer(time.Hour)
	defer retryT.Stop()
	now := make(chan time.Time)
	close(now)
	for {
		var replayC <-chan time.Time
		if r.spool != nil && r.spool.pending() > 0 {
			if d := time.Until(s.nextTry); d <= 0 {
				replayC = now
			} else {
				retryT.Reset(d)
				replayC = retryT.C
			}
		}
		select {
		case e := <-r.queue:
			batch = r.drain(append(batch, e))
			if len(batch) >= r.cfg.BatchSize {
				r.flush(batch)
				batch = batch[:0]
			}
		case <-flushT.C:
			if len(batch) > 0 {
				r.flush(batch)
				batch = batch[:0]
			}
			r.saveState()
			r.logDrops()
		case <-replayC:
			r.replayOne()
		case <-r.stop:
			for {
				if batch = r.drain(batch); len(batch) == 0 {
					break
				}
				r.flush(batch)
				batch = batch[:0]
			}
			r.logDrops()
			return
		}
	}
}

// drain moves queued events into batch without waiting, up to BatchSize.
func (r *Recorder) drain(batch []agenttrail.Event) []agenttrail.Event {
	return drainInto(r.queue, batch, r.cfg.BatchSize)
}

// drainInto moves events from ch into batch without waiting, up to n.
func drainInto(ch <-chan agenttrail.Event, batch []agenttrail.Event, n int) []agenttrail.Event {
	for len(batch) < n {
		select {
		case e := <-ch:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// flush sends batch, or spools it while the server is failing.
func (r *Recorder) flush(batch []agenttrail.Event) {
	r.saveState()
	r.encodeBatches(&r.sender.enc, &r.sender.part, batch, r.ship)
}

// encodeBatches gives every event an id (so a resent batch is stored once)
// and calls ship with request bodies of at most about maxBatchBytes and the
// events in each. Events that cannot be encoded are refused.
func (r *Recorder) encodeBatches(enc *batchEncoder, part *[]agenttrail.Event, batch []agenttrail.Event, ship func([]byte, []agenttrail.Event)) {
	for i := range batch {
		if batch[i].ID == "" {
			batch[i].ID = agenttrail.NewID(batch[i].Time)
		}
	}
	for len(batch) > 0 {
		enc.reset()
		*part = (*part)[:0]
		i := 0
		for ; i < len(batch) && (enc.n == 0 || enc.size() < maxBatchBytes); i++ {
			if err := enc.add(&batch[i]); err != nil {
				r.refuse(1, fmt.Errorf("encode event %s: %w", batch[i].ID, err))
				continue
			}
			*part = append(*part, batch[i])
		}
		batch = batch[i:]
		if len(*part) > 0 {
			ship(enc.finish(), *part)
		}
	}
}

// ship delivers one encoded batch: to the server when it is due to be tried,
// else to the spool. Without a spool it holds the batch and retries until
// the server takes it or Close gives up.
func (r *Recorder) ship(body []byte, events []agenttrail.Event) {
	for {
		if r.spool != nil && time.Now().Before(r.sender.nextTry) {
			r.toSpool(body, len(events))
			return
		}
		res, err := r.post(body)
		switch {
		case err == nil:
			r.delivered(res, false)
			return
		case isStatus(err, http.StatusRequestEntityTooLarge) && len(events) > 1:
			r.split(events)
			return
		case refused(err):
			r.refuse(len(events), err)
			return
		}
		r.fail(err)
		if r.spool != nil {
			r.toSpool(body, len(events))
			return
		}
		if !r.waitRetry() {
			r.dropped[dropShutdown].Add(int64(len(events)))
			return
		}
	}
}

// split sends the halves of a batch the server found too large.
func (r *Recorder) split(events []agenttrail.Event) {
	mid := len(events) / 2
	a := append([]agenttrail.Event(nil), events[:mid]...)
	b := append([]agenttrail.Event(nil), events[mid:]...)
	r.flush(a)
	r.flush(b)
}

// replayOne sends the oldest spooled batch and removes it once the server
// acknowledged it.
func (r *Recorder) replayOne() {
	payload, ok, err := r.spool.peekRecord()
	if err != nil {
		r.log.Error("recorder: cannot read the spool", "err", err)
		r.sender.nextTry = time.Now().Add(r.cfg.MaxBackoff)
		return
	}
	if !ok {
		return
	}
	res, err := r.post(payload)
	switch {
	case err == nil:
		r.ack()
		r.delivered(res, true)
		return
	case isStatus(err, http.StatusRequestEntityTooLarge):
		var events []agenttrail.Event
		if json.Unmarshal(payload, &events) == nil && len(events) > 1 {
			r.ack()
			r.split(events)
			return
		}
		fallthrough
	case refused(err):
		r.ack()
		r.refuse(countEvents(payload), err)
		return
	}
	r.fail(err)
}

func (r *Recorder) ack() {
	if err := r.spool.ack(); err != nil {
		r.log.Error("recorder: cannot record replay progress in the spool", "err", err)
	}
}

// post sends one JSON array body to POST /v1/events.
func (r *Recorder) post(body []byte) (wire.IngestResult, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RequestTimeout)
	defer cancel()
	return r.c.ingestBody(ctx, "application/json", bytes.NewReader(body))
}

// delivered counts an acknowledged batch and marks the server up.
func (r *Recorder) delivered(res wire.IngestResult, replay bool) {
	s := &r.sender
	n := int64(res.Accepted + res.Duplicates)
	r.sent.Add(n)
	r.duplicates.Add(int64(res.Duplicates))
	if replay {
		r.replayed.Add(n)
	}
	if len(res.Rejected) > 0 {
		r.rejected.Add(int64(len(res.Rejected)))
		if now := time.Now(); now.Sub(s.lastRejLog) >= time.Second {
			s.lastRejLog = now
			r.log.Warn("recorder: the server rejected events; they are not retried",
				"rejected", len(res.Rejected), "index", res.Rejected[0].Index, "error", res.Rejected[0].Error)
		}
	}
	s.failures, s.nextTry = 0, time.Time{}
	if s.down {
		s.down = false
		r.log.Info("recorder: the server is reachable again")
	}
}

// refuse counts events the server (or encoding) refused for good.
func (r *Recorder) refuse(n int, err error) {
	r.rejected.Add(int64(n))
	r.log.Warn("recorder: events refused; they are not retried", "events", n, "err", err)
}

// fail backs off after a failed request.
func (r *Recorder) fail(err error) {
	s := &r.sender
	s.failures++
	d := min(100*time.Millisecond, r.cfg.MaxBackoff) << min(s.failures-1, 20)
	if d <= 0 || d > r.cfg.MaxBackoff {
		d = r.cfg.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	d = min(max(d, RetryAfter(err)), r.cfg.MaxBackoff)
	s.nextTry = time.Now().Add(d)
	if r.ctx.Err() != nil {
		return // Close gave up; not the server's fault
	}
	if !s.down {
		s.down = true
		what := "retrying"
		if r.spool != nil {
			what = "spooling"
		}
		r.log.Warn("recorder: cannot deliver events; "+what, "err", err, "retry_in", d)
	} else {
		r.log.Debug("recorder: still cannot deliver events", "err", err, "retry_in", d)
	}
}

// waitRetry waits until the next try; false when Close gave up first.
func (r *Recorder) waitRetry() bool {
	t := time.NewTimer(time.Until(r.sender.nextTry))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// beat records a heartbeat now and at every interval until the Recorder
// closes. It runs apart from the sender, whose requests may take seconds:
// a heartbeat is stamped when it is due, not when a busy sender gets to it,
// so a slow server never makes a live producer look silent.
func (r *Recorder) beat() {
	defer r.done.Done()
	t := time.NewTicker(r.cfg.Heartbeat)
	defer t.Stop()
	now := time.Now()
	for {
		e := r.lifecycle(agenttrail.ActionHeartbeat)
		e.Time = now
		if !r.recordOpen(e) {
			return
		}
		select {
		case now = <-t.C:
		case <-r.stop:
			return
		}
	}
}

// lifecycle is a heartbeat or the stop that ends a clean run: about the
// heartbeat actor, stating the interval the next heartbeat is due within and
// the last producer_seq assigned before it.
func (r *Recorder) lifecycle(action string) agenttrail.Event {
	meta, _ := json.Marshal(struct {
		IntervalMS int64 `json:"interval_ms"`
		LastSeq    int64 `json:"last_seq"`
	}{r.cfg.Heartbeat.Milliseconds(), r.seq.Load()})
	e := agenttrail.Event{
		ActorType: r.cfg.HeartbeatActorType,
		ActorID:   r.cfg.HeartbeatActorID,
		Source:    agenttrail.SourceAgent,
		Action:    action,
		Result:    agenttrail.ResultSuccess,
		Metadata:  meta,
	}
	if action == agenttrail.ActionStop {
		e.Description = "stopped cleanly"
	}
	if e.ActorID == r.cfg.ActorID {
		e.ActorName = r.cfg.ActorName
	}
	return e
}

// logDrops logs lost events, at most once a second.
func (r *Recorder) logDrops() {
	s := &r.sender
	var total int64
	attrs := make([]any, 0, 2*len(r.dropped)+2)
	for i, reason := range dropReasons() {
		n := r.dropped[i].Load()
		total += n
		attrs = append(attrs, reason, n)
	}
	now := time.Now()
	if total == s.loggedDrops || now.Sub(s.lastDropLog) < time.Second {
		return
	}
	attrs = append(attrs, "new", total-s.loggedDrops)
	s.loggedDrops, s.lastDropLog = total, now
	r.log.Warn("recorder: events dropped", attrs...)
}

// isStatus reports whether err is a server answer with the given status.
func isStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.StatusCode == status
}

// refused reports whether the server refused a batch for good: it could not
// parse it, or it is over a limit even alone. Every other failure — the
// network, 5xx, 429, but also 401, 403 and 404, which a corrected token or
// address fixes — keeps the events for later.
func refused(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// countEvents returns how many events a spooled batch holds.
func countEvents(payload []byte) int {
	var events []json.RawMessage
	if err := json.Unmarshal(payload, &events); err != nil {
		return 0
	}
	return len(events)
}
