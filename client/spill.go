package client

import (
	"errors"

	"github.com/agenttrail/agenttrail"
)

// toSpool writes one batch to the spool. It is called by the sender and the
// spill goroutine.
func (r *Recorder) toSpool(body []byte, n int) {
	switch err := r.spool.append(body); {
	case err == nil:
		r.spooled.Add(int64(n))
	case errors.Is(err, errSpoolFull):
		r.dropped[dropSpoolFull].Add(int64(n))
	default:
		r.dropped[dropSpoolError].Add(int64(n))
		r.log.Error("recorder: cannot write the spool; events dropped", "events", n, "err", err)
	}
}

// spill is the goroutine that writes events Record could not queue straight
// to the spool, so a burst costs disk, not events.
func (r *Recorder) spill() {
	defer r.done.Done()
	var enc batchEncoder
	part := make([]agenttrail.Event, 0, r.cfg.BatchSize)
	batch := make([]agenttrail.Event, 0, r.cfg.BatchSize)
	write := func() {
		r.encodeBatches(&enc, &part, batch, r.toSpoolEvents)
		batch = batch[:0]
	}
	for {
		select {
		case e := <-r.overflow:
			batch = drainInto(r.overflow, append(batch, e), r.cfg.BatchSize)
			write()
		case <-r.stop:
			for {
				if batch = drainInto(r.overflow, batch, r.cfg.BatchSize); len(batch) == 0 {
					return
				}
				write()
			}
		}
	}
}

func (r *Recorder) toSpoolEvents(body []byte, events []agenttrail.Event) {
	r.toSpool(body, len(events))
}

// saveState keeps the producer's sequence high-water mark next to the spool
// so that a restart continues it. Without fsync: it must survive the process
// crashing, which the page cache ensures; Close saves it durably.
func (r *Recorder) saveState() {
	s := &r.sender
	if r.spool == nil {
		return
	}
	seq := r.seq.Load()
	if seq == s.savedSeq {
		return
	}
	st := producerState{ProducerID: r.producerID, Seq: seq, Boot: r.boot}
	if err := saveProducer(r.cfg.SpoolDir, st, false); err != nil {
		r.log.Error("recorder: cannot save the producer state", "err", err)
		return
	}
	s.savedSeq = seq
}
