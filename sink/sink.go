// Package sink delivers the trail to SIEMs and archives. Each configured
// sink follows the store in seq (commit) order from its own checkpoint,
// kept in the store (agenttrail.SinkLedger), and moves the checkpoint only
// after its receiver accepted a batch: a restart, a crash or a kill -9
// resumes from there, so delivery is at least once, and exactly once where
// the receiver deduplicates on the event id. There is no buffer to lose:
// the store is the buffer.
//
// A Runner is one sink's loop; a Set runs every configured sink and
// answers GET /v1/sinks. Each sink type is a Deliverer in a file of its
// own; the formats are package export's writers.
package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Batch is what one delivery sends: events in seq order and each one
// encoded in the sink's format (Payloads[i] is Events[i], ending in a line
// break). First and Last are the seqs of the first and last event.
type Batch struct {
	Sink     string
	Events   []agenttrail.Event
	Payloads [][]byte
	body     []byte // the payloads one after the other, when they were encoded so
}

// Body returns the payloads one after the other, without a copy when the
// batch was encoded as one buffer.
func (b *Batch) Body() []byte {
	if b.body != nil {
		return b.body
	}
	return bytes.Join(b.Payloads, nil)
}

// Key is the batch's idempotency key: "<sink>-<first seq>-<last seq>".
// A batch that is sent again after a restart has the same events, so the
// same key, as long as the sink's batch settings are unchanged.
func (b *Batch) Key() string {
	return fmt.Sprintf("%s-%d-%d", b.Sink, b.Events[0].Seq, b.Events[len(b.Events)-1].Seq)
}

// Bytes returns the total size of the payloads.
func (b *Batch) Bytes() int {
	n := 0
	for _, p := range b.Payloads {
		n += len(p)
	}
	return n
}

// subset returns the batch of the items at idx, in order.
func (b *Batch) subset(idx []int) *Batch {
	out := &Batch{Sink: b.Sink}
	for _, i := range idx {
		out.Events = append(out.Events, b.Events[i])
		out.Payloads = append(out.Payloads, b.Payloads[i])
	}
	return out
}

// Deliverer sends batches to one receiver. Deliver returns nil when the
// receiver took every item; a Result when it answered per item (some
// refused for good, some to be tried again, the rest taken); an error
// when the batch as a whole was not taken: a *Refused error when the
// receiver will never take it as it is (the Runner then halves the batch
// down to the event at fault), any other error to be tried again. Deliver
// is called from one goroutine at a time; Close releases what the
// Deliverer holds, and Deliver is not called after.
type Deliverer interface {
	Deliver(ctx context.Context, b *Batch) (*Result, error)
	Close() error
}

// Result is a receiver's answer per item. Rejected maps the index of each
// item refused for good to why (it goes to the dead letters); Retry lists
// the indexes of the items to send again (429, 5xx, a full queue). Every
// other item was taken. RetryAfter is the receiver's Retry-After, if any.
type Result struct {
	Rejected   map[int]string
	Retry      []int
	RetryAfter time.Duration
}

// Refused is a receiver's answer that it will never take this batch as it
// is (a 400, a 413, a format error).
type Refused struct {
	Reason string
}

func (e *Refused) Error() string { return "refused: " + e.Reason }

// Unavailable is a failure to be tried again after at least After (the
// receiver's Retry-After).
type Unavailable struct {
	Err   error
	After time.Duration
}

func (e *Unavailable) Error() string { return e.Err.Error() }
func (e *Unavailable) Unwrap() error { return e.Err }

// Halted is a failure that no retry will mend until someone acts (a bad
// token, a disabled endpoint): the Runner keeps trying, at the longest
// backoff, and reports it.
type Halted struct {
	Err error
}

func (e *Halted) Error() string { return e.Err.Error() }
func (e *Halted) Unwrap() error { return e.Err }

// retryAfterOf returns the wait a failure asks for, 0 when none.
func retryAfterOf(err error) time.Duration {
	var u *Unavailable
	if errors.As(err, &u) {
		return u.After
	}
	return 0
}
