package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/internal/wait"
)

// Store is what a Runner reads and writes: events in seq order, the head,
// and its checkpoint and dead letters.
type Store interface {
	agenttrail.Querier
	agenttrail.SinkLedger
}

// Timing of a Runner's loop.
const (
	// pollInterval is how often an idle sink asks the store for its head.
	pollInterval = 100 * time.Millisecond
	// saveInterval bounds how often a busy sink writes its checkpoint: a
	// kill between two writes resends at most this much (at least once),
	// and the store's writer is not asked for a commit per batch.
	saveInterval = 250 * time.Millisecond
	// maxRetryAfter bounds the Retry-After a receiver may impose.
	maxRetryAfter = 10 * time.Minute
)

// Runner is one sink's delivery loop: Run follows the store from the
// sink's checkpoint. Status and the requests (Replay, RetryDeadLetters)
// are safe for concurrent use with Run; the requests are carried out by
// Run between batches.
type Runner struct {
	cfg     Config
	d       Deliverer
	store   Store
	filter  agenttrail.Filter
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	mu          sync.Mutex
	st          status
	replay      *int64 // a checkpoint to move to, set by Replay
	retryLetter bool   // RetryDeadLetters was asked for
	wake        chan struct{}
}

// status is what GET /v1/sinks shows of a Runner, guarded by mu.
type status struct {
	checkpoint          int64
	delivered, retried  int64
	deadLetters         int64
	lastErr             string
	lastErrAt, lastOKAt time.Time
	started             bool
}

// NewRunner returns the Runner of the sink cfg (checked by Config.Check)
// delivering through d. It does not touch the store until Run.
func NewRunner(cfg Config, d Deliverer, store Store, log *slog.Logger) (*Runner, error) {
	f, err := cfg.filter()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, d: d, store: store, filter: f, log: log.With("sink", cfg.Name), now: time.Now,
		wake: make(chan struct{}, 1)}, nil
}

// Name returns the sink's name.
func (r *Runner) Name() string { return r.cfg.Name }

// Run delivers until ctx ends, then saves its checkpoint and closes its
// Deliverer. It returns nil: a receiver that fails is retried forever,
// never a reason to stop the server; a store that fails likewise.
func (r *Runner) Run(ctx context.Context) error {
	defer r.d.Close()
	var cp int64
	for {
		var err error
		if cp, err = r.store.Checkpoint(ctx, r.cfg.Name); err == nil {
			break
		}
		r.fail(err)
		if !r.sleep(ctx, r.backoff(1, 0)) {
			return nil
		}
	}
	r.mu.Lock()
	r.st.checkpoint, r.st.started = cp, true
	r.mu.Unlock()
	if n, err := r.store.CountDeadLetters(ctx, r.cfg.Name); err == nil {
		r.mu.Lock()
		r.st.deadLetters = n
		r.mu.Unlock()
	}
	r.metrics.checkpoint(r.cfg.Name, cp)
	saved, lastSave := cp, r.now()
	save := func(ctx context.Context, force bool) {
		if cp == saved || (!force && r.now().Sub(lastSave) < saveInterval) {
			return
		}
		if err := r.store.SetCheckpoint(ctx, r.cfg.Name, cp); err != nil {
			r.fail(fmt.Errorf("save checkpoint: %w", err))
			return
		}
		saved, lastSave = cp, r.now()
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		save(ctx, true)
	}()
	enc, err := newEncoder(r.cfg.Format)
	if err != nil { // Config.Check lets no unknown format through
		r.fail(err)
		<-ctx.Done()
		return nil
	}
	// While a full batch is delivered, the next one is read and encoded:
	// ahead carries that read. It is used only when it starts at the
	// checkpoint (the batch was taken and no replay moved it); else it is
	// read again.
	var ahead chan page
	defer func() {
		if ahead != nil {
			<-ahead
		}
	}()
	var pending time.Time // when the partial batch at cp was first seen
	for ctx.Err() == nil {
		if to, ok := r.takeReplay(); ok {
			cp, pending = to, time.Time{}
			save(ctx, true)
			r.log.Info("sink checkpoint moved", "checkpoint", cp)
		}
		if r.takeRetryLetters() {
			r.resendDeadLetters(ctx)
		}
		var p page
		if ahead != nil {
			p, ahead = <-ahead, nil
		}
		if !p.read || p.after != cp || p.err != nil {
			p = r.read(ctx, enc, cp)
		}
		if p.err != nil {
			r.fail(p.err)
			r.sleep(ctx, r.backoff(1, 0))
			continue
		}
		r.metrics.lag(r.cfg.Name, p.head-cp)
		if p.head <= cp {
			save(ctx, true) // idle: make the checkpoint durable now
			r.sleep(ctx, pollInterval)
			continue
		}
		if p.matched == 0 {
			// Nothing after cp up to head matches: every event up to head
			// was committed before the query.
			cp, pending = p.head, time.Time{}
			r.advanced(cp, 0)
			save(ctx, false)
			continue
		}
		full := p.matched == r.cfg.Batch.MaxEvents
		if !full {
			// Hold a partial batch up to max_wait for more events.
			if pending.IsZero() {
				pending = r.now()
			}
			if wait := time.Duration(r.cfg.Batch.MaxWait) - r.now().Sub(pending); wait > 0 {
				r.sleep(ctx, min(wait, pollInterval))
				continue
			}
		}
		pending = time.Time{}
		b := p.batch
		last := b.Events[len(b.Events)-1].Seq
		if full || len(b.Events) < p.matched {
			// More is waiting: read it while this batch goes.
			ahead = make(chan page, 1)
			go func() { ahead <- r.read(ctx, enc, last) }()
		}
		if !r.deliver(ctx, b) {
			continue // ctx ended, or a replay asked to move the checkpoint
		}
		cp = last
		if !full && len(b.Events) == p.matched && p.head > cp {
			cp = p.head // the page held every match up to head
		}
		r.advanced(cp, len(b.Events))
		save(ctx, false)
	}
	return nil
}

// page is one read of the store after a checkpoint: the head first, then
// up to max_events events after the checkpoint that match the filter
// (matched of them), encoded into batch up to max_bytes.
type page struct {
	read    bool
	after   int64
	head    int64
	matched int
	batch   *Batch
	err     error
}

// read reads and encodes the page after seq after. It uses enc: one read
// at a time.
func (r *Runner) read(ctx context.Context, enc *encoder, after int64) page {
	p := page{read: true, after: after}
	if p.head, p.err = r.store.HeadSeq(ctx); p.err != nil || p.head <= after {
		return p
	}
	res, err := r.store.Query(ctx, agenttrail.Query{Filter: r.filter, Sort: agenttrail.SortSeq,
		Limit: r.cfg.Batch.MaxEvents, After: &agenttrail.Position{Seq: after}})
	if err != nil {
		p.err = err
		return p
	}
	p.matched = len(res.Events)
	if p.matched > 0 {
		p.batch, p.err = enc.batch(r.cfg.Name, res.Events, int(r.cfg.Batch.MaxBytes))
	}
	return p
}

// deliver sends b until the receiver has taken or refused every item, and
// records the refused ones as dead letters. It returns false when ctx
// ended or a replay was asked for first: then nothing may move.
func (r *Runner) deliver(ctx context.Context, b *Batch) bool {
	todo := []*Batch{b}
	attempt := 0
	for len(todo) > 0 {
		cur := todo[0]
		res, err := r.d.Deliver(ctx, cur)
		var refused *Refused
		switch {
		case err == nil && res == nil:
			todo, attempt = todo[1:], 0
			continue
		case errors.As(err, &refused):
			if len(cur.Events) == 1 {
				res, err = &Result{Rejected: map[int]string{0: refused.Reason}}, nil
				break
			}
			// Halve the batch to find the events at fault; the others go.
			h := len(cur.Events) / 2
			todo = append([]*Batch{cur.subset(seq(0, h)), cur.subset(seq(h, len(cur.Events)))}, todo[1:]...)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			attempt++
			r.retried(len(cur.Events), err)
			halted := errors.As(err, new(*Halted))
			if halted {
				attempt = 30
			}
			if !r.sleep(ctx, r.backoff(attempt, retryAfterOf(err))) || r.replayPending() {
				return false
			}
			continue
		}
		if len(res.Rejected) > 0 {
			if !r.deadLetter(ctx, cur, res.Rejected) {
				return false
			}
		}
		if len(res.Retry) == 0 {
			todo, attempt = todo[1:], 0
			continue
		}
		attempt++
		r.retried(len(res.Retry), fmt.Errorf("receiver asked to retry %d of %d events", len(res.Retry), len(cur.Events)))
		sort.Ints(res.Retry)
		todo[0] = cur.subset(res.Retry)
		if !r.sleep(ctx, r.backoff(attempt, res.RetryAfter)) || r.replayPending() {
			return false
		}
	}
	return true
}

// deadLetter records the refused items of b; it retries the store until it
// succeeds, since the checkpoint may not move past an event that is
// neither delivered nor recorded.
func (r *Runner) deadLetter(ctx context.Context, b *Batch, rejected map[int]string) bool {
	var letters []agenttrail.DeadLetter
	for i, reason := range rejected {
		e := &b.Events[i]
		data, _ := json.Marshal(e)
		letters = append(letters, agenttrail.DeadLetter{Seq: e.Seq, EventID: e.ID, Org: e.Org, Reason: truncate(reason, 1000), Time: r.now(), Event: data})
	}
	sort.Slice(letters, func(i, j int) bool { return letters[i].Seq < letters[j].Seq })
	for attempt := 1; ; attempt++ {
		err := r.store.AddDeadLetters(ctx, r.cfg.Name, letters)
		if err == nil {
			break
		}
		r.fail(fmt.Errorf("record dead letters: %w", err))
		if !r.sleep(ctx, r.backoff(attempt, 0)) {
			return false
		}
	}
	for _, l := range letters {
		r.log.Warn("sink receiver refused an event; it is in the dead letters", "seq", l.Seq, "id", l.EventID, "reason", l.Reason)
	}
	r.mu.Lock()
	r.st.deadLetters += int64(len(letters))
	r.mu.Unlock()
	r.metrics.deadLettered(r.cfg.Name, len(letters))
	return true
}

// resendDeadLetters sends every dead letter once more; those the receiver
// takes are deleted, the others stay.
func (r *Runner) resendDeadLetters(ctx context.Context) {
	var after int64
	for ctx.Err() == nil {
		letters, err := r.store.DeadLetters(ctx, r.cfg.Name, after, r.cfg.Batch.MaxEvents)
		if err != nil || len(letters) == 0 {
			if err != nil {
				r.fail(fmt.Errorf("read dead letters: %w", err))
			}
			break
		}
		after = letters[len(letters)-1].ID
		var taken []int64
		for _, l := range letters {
			var e agenttrail.Event
			if err := json.Unmarshal(l.Event, &e); err != nil {
				continue
			}
			enc, err := newEncoder(r.cfg.Format)
			if err != nil {
				continue
			}
			b, err := enc.batch(r.cfg.Name, []agenttrail.Event{e}, int(r.cfg.Batch.MaxBytes))
			if err != nil {
				continue
			}
			res, err := r.d.Deliver(ctx, b)
			if err == nil && (res == nil || (len(res.Rejected) == 0 && len(res.Retry) == 0)) {
				taken = append(taken, l.ID)
			} else if err != nil {
				r.fail(fmt.Errorf("resend dead letter seq %d: %w", l.Seq, err))
			}
		}
		if err := r.store.DeleteDeadLetters(ctx, r.cfg.Name, taken); err != nil {
			r.fail(fmt.Errorf("delete resent dead letters: %w", err))
		}
		r.log.Info("resent dead letters", "taken", len(taken), "of", len(letters))
	}
	if n, err := r.store.CountDeadLetters(ctx, r.cfg.Name); err == nil {
		r.mu.Lock()
		r.st.deadLetters = n
		r.mu.Unlock()
	}
}

// backoff is exponential with full jitter (a uniform wait between 0 and
// min·2^(attempt-1), capped at max), but never less than what the
// receiver asked for (Retry-After), up to maxRetryAfter.
func (r *Runner) backoff(attempt int, after time.Duration) time.Duration {
	lo, hi := time.Duration(r.cfg.Retry.Min), time.Duration(r.cfg.Retry.Max)
	ceil := hi
	if attempt < 30 {
		ceil = min(hi, lo<<(attempt-1))
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	return max(d, min(after, maxRetryAfter))
}

// sleep waits d or until ctx ends or a request arrives; false when ctx
// ended.
func (r *Runner) sleep(ctx context.Context, d time.Duration) bool {
	return wait.Sleep(ctx, d, r.wake)
}

func (r *Runner) fail(err error) {
	r.mu.Lock()
	r.st.lastErr, r.st.lastErrAt = err.Error(), r.now()
	r.mu.Unlock()
	r.log.Warn("sink delivery failed", "err", err)
}

func (r *Runner) retried(n int, err error) {
	r.fail(err)
	r.mu.Lock()
	r.st.retried += int64(n)
	r.mu.Unlock()
	r.metrics.retried(r.cfg.Name, n)
}

func (r *Runner) advanced(cp int64, n int) {
	r.mu.Lock()
	r.st.checkpoint = cp
	if n > 0 {
		r.st.delivered += int64(n)
		r.st.lastOKAt = r.now()
	}
	r.mu.Unlock()
	r.metrics.delivered(r.cfg.Name, n, cp)
}

// Replay moves the checkpoint to seq: the events after it are delivered
// again. Run carries it out before its next batch.
func (r *Runner) Replay(seq int64) {
	r.mu.Lock()
	r.replay = &seq
	r.mu.Unlock()
	r.poke()
}

// RetryDeadLetters asks Run to resend the dead letters.
func (r *Runner) RetryDeadLetters() {
	r.mu.Lock()
	r.retryLetter = true
	r.mu.Unlock()
	r.poke()
}

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Runner) takeReplay() (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replay == nil {
		return 0, false
	}
	to := *r.replay
	r.replay = nil
	r.st.checkpoint = to
	return to, true
}

func (r *Runner) replayPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replay != nil
}

func (r *Runner) takeRetryLetters() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := r.retryLetter
	r.retryLetter = false
	return ok
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
