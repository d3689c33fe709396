package sqlite

import (
	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
)

// sideWork is the part of Append that needs no database: the leaf hash of
// every stored event appended to its org's tree, and the rollup deltas.
// The writer goroutine is what bounds ingest, and these are about a fifth
// of its time per event (profile of serve under the load generator), so a
// batch large enough hands them to a goroutine of its own, which works on
// events already inserted while the writer inserts the next ones, on
// another core. It hands them over in ranges, after it has set each event's
// Seq (0 for a duplicate) and LogIndex and its tree: from then on the
// writer does not touch those events until finish or stop returned.
//
// The appenders the side goroutine appends to were preloaded with their
// right edge (trees.of), the only older hashes appending reads, so it never
// reads through the writer's connection, which is not safe for concurrent
// use.
type sideWork struct {
	batch []agenttrail.Event
	// apps is the tree of each event to append a leaf to, by batch index;
	// nil for a duplicate, or when the store keeps no tree.
	apps  []*integrity.TreeAppender
	delta rollupDelta
	buf   []byte
	err   error // the first failure; later events are skipped

	sent   int           // events before this index were handed over
	ranges chan [2]int   // nil when the work is done inline
	done   chan struct{} // closed when the side goroutine returned
}

const (
	// sideMinBatch is the smallest batch handed to a goroutine: below it,
	// starting one costs more than it saves.
	sideMinBatch = 64
	// sideChunk is how many events the writer hands over at once.
	sideChunk = 128
)

func newSideWork(batch []agenttrail.Event) *sideWork {
	sw := &sideWork{batch: batch, apps: make([]*integrity.TreeAppender, len(batch)), delta: make(rollupDelta, 64)}
	if len(batch) >= sideMinBatch {
		sw.ranges = make(chan [2]int, len(batch)/sideChunk+2)
		sw.done = make(chan struct{})
		go func() {
			defer close(sw.done)
			for r := range sw.ranges {
				sw.do(r[0], r[1])
			}
		}()
	}
	return sw
}

// ready hands over the events before n, once enough have collected.
func (sw *sideWork) ready(n int) {
	if n-sw.sent >= sideChunk {
		sw.handOver(n)
	}
}

func (sw *sideWork) handOver(n int) {
	if n <= sw.sent {
		return
	}
	if sw.ranges == nil {
		sw.do(sw.sent, n)
	} else {
		sw.ranges <- [2]int{sw.sent, n}
	}
	sw.sent = n
}

// finish hands over the rest of the batch, waits for the side work to
// end, and returns the batch's rollup deltas.
func (sw *sideWork) finish() (rollupDelta, error) {
	sw.handOver(len(sw.batch))
	sw.stop()
	return sw.delta, sw.err
}

// stop waits for what was handed over to be done; the batch is the
// writer's again. It may be called more than once.
func (sw *sideWork) stop() {
	if sw.ranges != nil {
		close(sw.ranges)
		<-sw.done
		sw.ranges = nil
	}
}

// do appends the leaves of the stored events in batch[lo:hi] to their trees,
// in order, and adds them to the rollup deltas.
func (sw *sideWork) do(lo, hi int) {
	for i := lo; i < hi; i++ {
		e := &sw.batch[i]
		if e.Seq == 0 || sw.err != nil {
			continue
		}
		if a := sw.apps[i]; a != nil {
			var leaf [32]byte
			leaf, sw.buf = integrity.LeafHash(e, sw.buf)
			if _, err := a.Append(leaf); err != nil {
				sw.err = err
				continue
			}
		}
		row := rowOf(e)
		sw.delta.add(&row, 1)
	}
}
