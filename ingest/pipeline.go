// Package ingest is the one write path of agenttrail: every event stored,
// whether it came over the HTTP API or from the server itself (its audit
// of reads and token changes, retention's record), goes through
// Pipeline.Write, which normalizes, checks, validates and redacts it and
// then queues it for a single writer that commits many callers' events in
// one Append (group commit), answering each caller only once its events are
// durable. Spool is the durable spool put between the writer and the store
// for when the store is unavailable.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// Config tunes a Pipeline. The zero value is usable: every zero field takes
// its default.
type Config struct {
	// QueueEvents bounds the events waiting to be committed (default
	// 100,000). A Write that would go over it fails at once with an
	// EUNAVAILABLE error: nothing is ever dropped silently.
	QueueEvents int
	// MaxBatch is the number of events the writer aims to commit in one
	// Append (default 5,000). A batch holds whole requests, so one request
	// larger than MaxBatch is committed alone, all or nothing.
	MaxBatch int
	// Linger is how long the writer waits for more requests to fill a batch
	// once one is queued (default 0: commit whatever is queued). Group
	// commit happens without it, because requests queue up while the
	// previous batch commits.
	Linger time.Duration
	// Writers is how many batches may be committing at once (default 1).
	// Each writer takes whatever is queued when it is free, so with two a
	// batch is being prepared while the one before it commits; a store
	// that overlaps concurrent Appends (PostgreSQL) gains from that, one
	// that serializes them (SQLite) does not. Seq stays in commit order
	// either way: the store assigns it.
	Writers int
	// Naive commits every event in its own Append call: one transaction per
	// event. It exists so benchmarks can measure the design group commit
	// replaces with the same server, schema and engine.
	Naive bool

	// Redactor replaces secrets in every event Write takes; nil means the
	// built-in rules (redact.Builtin). Nothing is stored unredacted.
	Redactor *redact.Redactor
	// Now is the clock of Write (receive times, the future bound of
	// Validate); nil means time.Now.
	Now func() time.Time
	// Logger logs failed commits; nil discards.
	Logger *slog.Logger
	// Registerer registers the pipeline's metrics; nil leaves them
	// unregistered. Registering two pipelines on one registry panics, like
	// any duplicate Prometheus collector.
	Registerer prometheus.Registerer
}

// Defaults of Config.
const (
	DefaultQueueEvents = 100_000
	DefaultMaxBatch    = 5_000
)

func (c Config) withDefaults() Config {
	defaults.Positive(&c.QueueEvents, DefaultQueueEvents)
	defaults.Positive(&c.MaxBatch, DefaultMaxBatch)
	defaults.Positive(&c.Writers, 1)
	if c.Linger < 0 {
		c.Linger = 0
	}
	if c.Redactor == nil {
		c.Redactor = redact.Builtin()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	defaults.Logger(&c.Logger)
	return c
}

// Pipeline queues events from many concurrent Writes and commits them
// through one writer, Run. All methods are safe for concurrent use. Run is
// called once; Write may be called before Run starts (it waits) and after
// Run returned (it fails with EUNAVAILABLE).
//
// The writer only calls Append on the agenttrail.Appender it was given, so a
// durable spool can be put between the pipeline and the store by wrapping
// the store in another Appender.
type Pipeline struct {
	store agenttrail.Appender
	cfg   Config
	log   *slog.Logger
	m     *metrics

	wake chan struct{} // capacity 1: "something was queued"

	mu       sync.Mutex
	queue    []*request
	queued   int // events in queue
	closed   bool
	running  bool
	stopping <-chan struct{} // Run's ctx.Done(): closed means no new work
}

// request is one Write waiting for its events to be committed. The writer
// fills res and err, then closes done.
type request struct {
	events []agenttrail.Event
	done   chan struct{}
	res    agenttrail.AppendResult
	err    error
	// refused lists the events the store refused one by one (Index into
	// events), when a commit of the whole failed because of them; the
	// other events were committed.
	refused []Rejection
}

// New returns a Pipeline that commits to store.
func New(store agenttrail.Appender, cfg Config) *Pipeline {
	cfg = cfg.withDefaults()
	p := &Pipeline{
		store: store,
		cfg:   cfg,
		log:   cfg.Logger,
		wake:  make(chan struct{}, 1),
	}
	p.m = newMetrics(cfg.Registerer, p.Depth)
	return p
}

// Depth returns the number of events queued and not yet taken by the
// writer.
func (p *Pipeline) Depth() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}

// submit queues events, which Write has normalized, validated and
// redacted, and waits until the writer has committed them or ctx ends. It
// returns how many of THIS call's events were stored and how many were
// already stored (or repeated within the call).
//
// It fails at once with an EUNAVAILABLE error when the queue has no room or
// the pipeline is shutting down, and with ETOOLARGE when events alone exceed
// the queue bound. When the store fails, it returns an EUNAVAILABLE error
// (the store's own EINVALID/ETOOLARGE errors pass through). When ctx ends
// first, it returns an EUNAVAILABLE error, but the events stay queued and
// may still be committed; re-sending them is safe because ids deduplicate.
// submit keeps no reference to events after it returns successfully.
//
// An event the store refuses (a value its database cannot hold) costs the
// others nothing: it is returned in refused, by index into events, and
// the rest are committed.
func (p *Pipeline) submit(ctx context.Context, events []agenttrail.Event) (res agenttrail.AppendResult, refused []Rejection, err error) {
	if len(events) == 0 {
		return agenttrail.AppendResult{}, nil, nil
	}
	if err := ctx.Err(); err != nil {
		return agenttrail.AppendResult{}, nil, unavailable("request ended before its events were queued: %v", err)
	}
	req := &request{events: events, done: make(chan struct{})}
	if err := p.enqueue(req); err != nil {
		return agenttrail.AppendResult{}, nil, err
	}
	select {
	case <-req.done:
		return req.res, req.refused, req.err
	case <-ctx.Done():
		return agenttrail.AppendResult{}, nil, unavailable("request ended before its events were committed (they may still be; re-send them with the same ids): %v", ctx.Err())
	}
}

func (p *Pipeline) enqueue(req *request) error {
	n := len(req.events)
	if n > p.cfg.QueueEvents {
		p.m.dropped.WithLabelValues(reasonTooLarge).Add(float64(n))
		return agenttrail.Errorf(agenttrail.ETOOLARGE, "%d events in one request are over the ingest queue bound of %d", n, p.cfg.QueueEvents)
	}
	p.mu.Lock()
	switch {
	case p.closed || isClosed(p.stopping):
		p.mu.Unlock()
		p.m.dropped.WithLabelValues(reasonShutdown).Add(float64(n))
		return unavailable("the server is shutting down; retry against another instance or later")
	case p.queued+n > p.cfg.QueueEvents:
		p.mu.Unlock()
		p.m.dropped.WithLabelValues(reasonQueueFull).Add(float64(n))
		return unavailable("the ingest queue is full; retry later")
	}
	p.queue = append(p.queue, req)
	p.queued += n
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // the writer has been told already
	}
	return nil
}

// ErrRunning is returned by Run when it is already running.
var ErrRunning = errors.New("ingest: pipeline is already running")

// Run runs the writers: each takes whole queued requests, up to about
// MaxBatch events, commits them in one Append, and answers every waiting
// Write of the batch; Config.Writers of them may be committing at once. As
// soon as ctx is done Write fails with EUNAVAILABLE; Run commits everything
// queued before that, and returns nil. Appends are not cancelled by ctx: a
// batch in flight completes. Run returns ErrRunning if it is called while
// another Run is running, and may not be called again after it returned.
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running || p.closed {
		p.mu.Unlock()
		return ErrRunning
	}
	p.running = true
	p.stopping = ctx.Done()
	p.mu.Unlock()

	// Appends outlive ctx so that shutdown commits what it promised to.
	commitCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range p.cfg.Writers {
		wg.Go(func() {
			var buf []agenttrail.Event // this writer's batch buffer, reused
			for ctx.Err() == nil {
				if p.Depth() == 0 {
					select {
					case <-ctx.Done():
					case <-p.wake:
					}
					continue
				}
				p.linger(ctx)
				p.commit(commitCtx, &buf, p.take())
			}
		})
	}
	wg.Wait()

	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	n := 0
	var buf []agenttrail.Event
	for reqs := p.take(); len(reqs) > 0; reqs = p.take() {
		for _, r := range reqs {
			n += len(r.events)
		}
		p.commit(commitCtx, &buf, reqs)
	}
	p.log.Info("ingest pipeline stopped", "drained_events", n)
	return nil
}

// linger waits up to Linger for the queue to reach MaxBatch events.
// Without it the writer takes what is there: requests queue up behind a
// commit in flight anyway, so batches grow with load on their own.
func (p *Pipeline) linger(ctx context.Context) {
	if p.cfg.Linger <= 0 {
		return
	}
	t := time.NewTimer(p.cfg.Linger)
	defer t.Stop()
	for p.Depth() < p.cfg.MaxBatch {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-p.wake:
		}
	}
}

// take removes whole requests from the head of the queue, up to MaxBatch
// events but at least one request.
func (p *Pipeline) take() []*request {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, events := 0, 0
	for n < len(p.queue) {
		k := len(p.queue[n].events)
		if n > 0 && events+k > p.cfg.MaxBatch {
			break
		}
		events += k
		n++
	}
	if n == 0 {
		return nil
	}
	reqs := make([]*request, n)
	copy(reqs, p.queue)
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:])
	p.queue = p.queue[:rest]
	p.queued -= events
	return reqs
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func unavailable(format string, args ...any) error {
	return agenttrail.Errorf(agenttrail.EUNAVAILABLE, format, args...)
}
