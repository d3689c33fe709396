package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/internal/spoollog"
)

// Reasons a Recorder drops events, the keys of RecorderStats.Dropped.
const (
	DropQueueFull  = "queue_full"  // the queue (and the spool hand-off) was full when Record was called
	DropSpoolFull  = "spool_full"  // the spool had reached MaxSpoolBytes
	DropSpoolError = "spool_error" // writing the spool failed (disk error)
	DropClosed     = "closed"      // Record was called after Close
	DropShutdown   = "shutdown"    // Close's context ended with events neither sent nor spooled
)

// HeartbeatOff, as RecorderConfig.Heartbeat, turns heartbeats off.
const HeartbeatOff time.Duration = -1

// RecorderConfig configures a Recorder. The zero value of each field means
// its default.
type RecorderConfig struct {
	// ProducerID names this producer on every event. By default it is a new
	// UUIDv7, kept in SpoolDir when there is one so that a restart continues
	// the same producer and its producer_seq.
	ProducerID string
	// SpoolDir holds the durable spool and the producer state; it is made
	// (mode 0700) when missing. Empty means no spool: while the server is
	// unreachable the Recorder holds one batch in memory, retries it, and
	// drops what overflows the queue. One directory serves one Recorder at a
	// time: the Recorder locks it, and NewRecorder fails with an error
	// wrapping ErrSpoolInUse, touching nothing, while another holds it.
	SpoolDir string
	// QueueSize bounds the events waiting in memory (default 10,000).
	QueueSize int
	// BatchSize is the most events sent in one request (default 500).
	BatchSize int
	// FlushInterval is the longest an event waits for its batch to fill
	// (default 1 s).
	FlushInterval time.Duration
	// MaxSpoolBytes bounds the spool on disk (default 256 MiB); beyond it,
	// batches are dropped with reason DropSpoolFull.
	MaxSpoolBytes int64
	// Heartbeat is the interval of heartbeat events (source "agent", action
	// "heartbeat"); 0 means 30 s and HeartbeatOff none. Heartbeats need an
	// actor: HeartbeatActorID, else ActorID. A Recorder that heartbeats
	// records a last event when it closes (action "stop"), so that the end
	// of a clean run is never taken for a gap.
	Heartbeat time.Duration
	// HeartbeatActorID and HeartbeatActorType name who the heartbeats and
	// the stop are about when that is not the default actor: a capture
	// process records many agents' actions but heartbeats as itself
	// (e.g. "proxy-mcp@host", a system actor). Empty means ActorID and
	// ActorType.
	HeartbeatActorID   string
	HeartbeatActorType agenttrail.ActorType
	// MaxBackoff caps the wait between retries, including a server's
	// Retry-After (default 30 s).
	MaxBackoff time.Duration
	// RequestTimeout bounds one request to the server (default 10 s).
	RequestTimeout time.Duration

	// Actor defaults, applied to events that leave them empty. ActorName
	// is applied only together with ActorID. An event that names no actor
	// type after that is an agent's.
	ActorType agenttrail.ActorType
	ActorID   string
	ActorName string
	Org       string
	Project   string

	// Logger logs failed deliveries and spool trouble; nil discards.
	Logger *slog.Logger
}

func (c *RecorderConfig) setDefaults() {
	defaults.Positive(&c.QueueSize, 10000)
	defaults.Positive(&c.BatchSize, 500)
	defaults.Positive(&c.FlushInterval, time.Second)
	defaults.Positive(&c.MaxSpoolBytes, 256<<20)
	if c.Heartbeat == 0 {
		c.Heartbeat = 30 * time.Second
	}
	defaults.Positive(&c.MaxBackoff, 30*time.Second)
	defaults.Positive(&c.RequestTimeout, 10*time.Second)
	defaults.Logger(&c.Logger)
}

// RecorderStats counts what a Recorder did since it was made.
type RecorderStats struct {
	Recorded   int64 // events Record stamped with a producer_seq (dropped ones included)
	Queued     int64 // events waiting in memory now
	Sent       int64 // events the server acknowledged, Replayed and Duplicates included
	Duplicates int64 // acknowledged events the server already had
	Spooled    int64 // events written to the spool
	Replayed   int64 // spooled events the server acknowledged
	Rejected   int64 // events the server refused; they are logged and not retried
	// Dropped counts lost events by reason (the Drop* constants). Every
	// reason is present.
	Dropped      map[string]int64
	SpoolPending int64 // records (batches) in the spool waiting to be replayed
	SpoolBytes   int64 // size of the spool on disk
	SpoolCorrupt int64 // damaged spool records skipped
}

// DroppedTotal returns the sum of Dropped.
func (s RecorderStats) DroppedTotal() int64 {
	var n int64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Recorder records events asynchronously: Record stamps an event and queues
// it without blocking; a sender goroutine batches the queue to the server,
// retries with jittered exponential backoff, and, while the server is
// unreachable or unavailable, writes batches to a durable spool it replays
// in order once the server is back. Events keep their ids, so a batch sent
// twice is stored once.
//
// A Recorder is safe for concurrent use. Make it with NewRecorder (the zero
// value is not usable) and end it with Close; its goroutines run in between.
// Events reach the server at least once and are stored once; their order of
// arrival is not their order of recording (a spooled batch may arrive after
// newer ones), which producer_seq and time restore.
type Recorder struct {
	c          *Client
	cfg        RecorderConfig
	log        *slog.Logger
	producerID string
	seqStart   int64
	seq        seqCounter
	boot       string // the OS boot, saved with the producer state

	queue    chan agenttrail.Event
	overflow chan agenttrail.Event // to the spool while the queue is full; nil without a spool
	spool    *spool
	unlock   func() // releases SpoolDir; nil without a spool

	closed   atomic.Bool
	inflight atomic.Int64 // Record calls under way, which Close waits out
	stop     chan struct{}
	done     sync.WaitGroup
	ctx      context.Context // of requests; ends when Close's context does
	cancel   context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	sent, duplicates, spooled, replayed, rejected atomic.Int64
	dropped                                       [5]atomic.Int64 // indexed by the drop* constants

	sender sender // owned by the sender goroutine
}

// Indexes of Recorder.dropped, in the order of dropReasons.
const (
	dropQueueFull = iota
	dropSpoolFull
	dropSpoolError
	dropClosed
	dropShutdown
)

func dropReasons() [5]string {
	return [5]string{DropQueueFull, DropSpoolFull, DropSpoolError, DropClosed, DropShutdown}
}

// NewRecorder starts a Recorder that sends through c. It opens the spool and
// the producer state when cfg.SpoolDir is set, and fails when they cannot be
// read or cfg is inconsistent (heartbeats without an ActorID).
func NewRecorder(c *Client, cfg RecorderConfig) (*Recorder, error) {
	if c == nil {
		return nil, errors.New("new recorder: nil client")
	}
	cfg.setDefaults()
	logger := cfg.Logger
	if cfg.HeartbeatActorID == "" {
		cfg.HeartbeatActorID, cfg.HeartbeatActorType = cfg.ActorID, cfg.ActorType
	}
	if cfg.Heartbeat > 0 && cfg.HeartbeatActorID == "" {
		return nil, agenttrail.Invalid("ActorID", "is required for heartbeats; set it or HeartbeatActorID, or set Heartbeat to HeartbeatOff")
	}
	r := &Recorder{
		c:     c,
		cfg:   cfg,
		log:   logger,
		queue: make(chan agenttrail.Event, cfg.QueueSize),
		stop:  make(chan struct{}),
	}
	now := time.Now()
	r.producerID = cfg.ProducerID
	if cfg.SpoolDir != "" {
		// The spool makes its own segments' directory, but the producer
		// state is saved first: make the directory here, as private.
		if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
			return nil, fmt.Errorf("new recorder: spool directory: %w", err)
		}
		if err := r.openSpool(now); err != nil {
			return nil, fmt.Errorf("new recorder: %w", err)
		}
		r.overflow = make(chan agenttrail.Event, cfg.BatchSize)
	}
	if r.producerID == "" {
		r.producerID = agenttrail.NewID(now)
	}
	r.seq.Store(r.seqStart)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.sender.init(r)
	r.done.Add(1)
	go r.run()
	if r.spool != nil {
		r.done.Add(1)
		go r.spill()
	}
	if cfg.Heartbeat > 0 {
		r.done.Add(1)
		go r.beat()
	}
	return r, nil
}

// ErrSpoolInUse is wrapped by the error of NewRecorder when another
// Recorder, in this process or another, holds RecorderConfig.SpoolDir.
var ErrSpoolInUse = spoollog.ErrLocked

// openSpool locks the spool directory, opens the spool, and continues the
// producer kept next to it. It leaves the directory locked on success only.
func (r *Recorder) openSpool(now time.Time) (err error) {
	unlock, err := spoollog.Lock(r.cfg.SpoolDir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			r.seq.unmap()
			unlock()
		}
	}()
	st, crashed, err := loadProducer(r.cfg.SpoolDir, now)
	if err != nil {
		return err
	}
	r.boot = bootID()
	mapped, mapErr := r.seq.mapSeq(r.cfg.SpoolDir)
	if mapErr != nil {
		r.log.Warn("recorder: producer_seq counter kept in memory; a crash will skip numbers", "err", mapErr)
	}
	switch {
	case r.producerID != "" && r.producerID != st.ProducerID:
		st = producerState{ProducerID: r.producerID}
	case crashed && mapErr == nil && st.Boot != "" && st.Boot == r.boot && mapped >= st.Seq:
		// The killed run's counter is exact: the numbers it took after
		// the last event the server has are exactly the events it lost.
		r.log.Warn("recorder: the previous run did not close; events it held in memory are lost and show as a producer_seq gap",
			"producer_id", st.ProducerID, "last_seq", mapped)
		st.Seq = mapped
	case crashed:
		// Events held in memory when the process (or the machine) died
		// took sequence numbers after the last saved one; skip past them
		// so their loss is visible as a gap.
		skip := int64(r.cfg.QueueSize + 3*r.cfg.BatchSize)
		r.log.Warn("recorder: the previous run did not close; skipping producer_seq numbers of events it may have lost",
			"producer_id", st.ProducerID, "from", st.Seq+1, "to", st.Seq+skip)
		st.Seq += skip
	}
	r.producerID, r.seqStart = st.ProducerID, st.Seq
	r.seq.Store(st.Seq)
	st.Clean, st.Boot = false, r.boot
	if err := saveProducer(r.cfg.SpoolDir, st, true); err != nil {
		return err
	}
	if r.spool, err = openSpool(r.cfg.SpoolDir, r.cfg.MaxSpoolBytes); err != nil {
		return err
	}
	if n := r.spool.pending(); n > 0 {
		r.log.Info("recorder: replaying the spool", "batches", n, "bytes", r.spool.bytes())
	}
	r.unlock = unlock
	return nil
}

// ProducerID returns the producer_id stamped on every event.
func (r *Recorder) ProducerID() string { return r.producerID }

// Record stamps e — actor defaults where e leaves them empty, the trace and
// span of the OpenTelemetry span in ctx when e has no trace_id (see
// FromContext), ProducerID, the next ProducerSeq, and Time = now when zero —
// and queues it for sending. It
// never blocks and never fails: when the queue is full the event goes to the
// spool writer if that has room, and is otherwise dropped and counted
// (Stats().Dropped["queue_full"]). The Recorder keeps e.Metadata; the caller
// must not modify it afterwards. ctx is not used to cancel anything: an
// event outlives the call that recorded it.
func (r *Recorder) Record(ctx context.Context, e agenttrail.Event) {
	FromContext(ctx, &e)
	if !r.recordOpen(e) {
		r.dropped[dropClosed].Add(1)
	}
}

// recordOpen records e unless the Recorder is closed, and reports whether it
// did. Close waits for the calls under way.
func (r *Recorder) recordOpen(e agenttrail.Event) bool {
	r.inflight.Add(1)
	defer r.inflight.Add(-1)
	if r.closed.Load() {
		return false
	}
	r.record(e)
	return true
}

// record is Record without the closed check, for the stop event Close
// records last.
func (r *Recorder) record(e agenttrail.Event) {
	if e.ActorID == "" {
		e.ActorID = r.cfg.ActorID
		if e.ActorName == "" {
			e.ActorName = r.cfg.ActorName
		}
	}
	e.ActorType = cmp.Or(e.ActorType, r.cfg.ActorType, agenttrail.ActorAgent)
	e.Org = cmp.Or(e.Org, r.cfg.Org)
	e.Project = cmp.Or(e.Project, r.cfg.Project)
	e.ProducerID = r.producerID
	e.ProducerSeq = r.seq.Add(1)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	select {
	case r.queue <- e:
		return
	default:
	}
	if r.overflow != nil {
		select {
		case r.overflow <- e:
			return
		default:
		}
	}
	r.dropped[dropQueueFull].Add(1)
}

// Stats returns the Recorder's counters. It is safe to call at any time,
// also after Close.
func (r *Recorder) Stats() RecorderStats {
	s := RecorderStats{
		Recorded:   r.seq.loadLocked() - r.seqStart,
		Queued:     int64(len(r.queue) + len(r.overflow)),
		Sent:       r.sent.Load(),
		Duplicates: r.duplicates.Load(),
		Spooled:    r.spooled.Load(),
		Replayed:   r.replayed.Load(),
		Rejected:   r.rejected.Load(),
		Dropped:    make(map[string]int64, len(r.dropped)),
	}
	for i, reason := range dropReasons() {
		s.Dropped[reason] = r.dropped[i].Load()
	}
	if r.spool != nil {
		s.SpoolPending = int64(r.spool.pending())
		s.SpoolBytes = r.spool.bytes()
		s.SpoolCorrupt = r.spool.corrupted()
	}
	return s
}

// Close stops accepting events (later Records are dropped with reason
// DropClosed), sends what is queued, or spools it when the server is
// unreachable or ctx ends first, and stops the Recorder's goroutines. The
// spool is not replayed further: the next Recorder on the same SpoolDir does
// that. Without a spool, Close keeps retrying an unreachable server until
// ctx ends, so give it a deadline. It returns an error when events were lost
// on the way out or the producer state could not be saved. Later calls return
// the first call's result.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() { r.closeErr = r.close(ctx) })
	return r.closeErr
}

func (r *Recorder) close(ctx context.Context) error {
	r.closed.Store(true)
	for r.inflight.Load() > 0 {
		runtime.Gosched() // Record never blocks, so this ends at once
	}
	if r.cfg.Heartbeat > 0 {
		r.record(r.lifecycle(agenttrail.ActionStop))
	}
	stopCancel := context.AfterFunc(ctx, r.cancel)
	defer stopCancel()
	lostBefore := r.dropped[dropShutdown].Load()
	close(r.stop)
	r.done.Wait()
	r.cancel()
	var err error
	if r.spool != nil {
		st := producerState{ProducerID: r.producerID, Seq: r.seq.Load(), Clean: true, Boot: r.boot}
		err = errors.Join(saveProducer(r.cfg.SpoolDir, st, true), r.spool.close(), r.seq.unmap())
		r.unlock()
	}
	if lost := r.dropped[dropShutdown].Load() - lostBefore; lost > 0 {
		err = errors.Join(fmt.Errorf("close recorder: %d events could not be sent: %w", lost, context.Cause(ctx)), err)
	}
	return err
}
