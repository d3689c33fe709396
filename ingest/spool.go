package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/internal/spoollog"
	"github.com/prometheus/client_golang/prometheus"
)

// SpoolConfig configures a Spool. Dir is required; every other zero field
// takes its default.
type SpoolConfig struct {
	// Dir holds the spool's segment files, e.g. <data>/spool.
	Dir string
	// MaxBytes bounds the spool on disk (default 1 GiB). An Append that
	// would go over it fails with an EUNAVAILABLE error wrapping
	// ErrSpoolFull, which the HTTP API answers with 503 and Retry-After.
	MaxBytes int64
	// StoreTimeout bounds one store Append (default 10 s, far above a
	// healthy commit of a full batch). A store that hangs is treated as
	// one that failed: the batch is spooled, so senders are answered
	// before their own timeouts. Should the abandoned Append commit after
	// all, the replay is deduplicated.
	StoreTimeout time.Duration
	// MaxBackoff caps the wait between probes of a failed store (default
	// 5 s); the first retry comes after 100 ms.
	MaxBackoff time.Duration
	// Logger logs the store's failures and recoveries; nil discards.
	Logger *slog.Logger
	// Registerer registers the spool's metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
}

// DefaultSpoolMaxBytes is the default of SpoolConfig.MaxBytes.
const DefaultSpoolMaxBytes int64 = 1 << 30

func (c SpoolConfig) withDefaults() SpoolConfig {
	defaults.Positive(&c.MaxBytes, DefaultSpoolMaxBytes)
	defaults.Positive(&c.StoreTimeout, 10*time.Second)
	defaults.Positive(&c.MaxBackoff, 5*time.Second)
	defaults.Logger(&c.Logger)
	return c
}

// ErrSpoolFull is in the chain of the error Append returns when the store
// is unavailable and the spool has reached SpoolConfig.MaxBytes.
var ErrSpoolFull = errors.New("ingest: the spool is full")

// Spool is the server's durable spool: an agenttrail.Appender
// put between the ingest pipeline and the store. Append stores a batch in
// the store; when the store fails with anything but a refusal of the data
// (EINVALID, ETOOLARGE), it writes the batch to segment files on disk,
// fsynced, and reports it as spooled: durable, though not yet in the store.
// While the spool holds batches, new batches go to it as well, so the store
// receives everything in the order it was accepted. Run replays the spool
// into the store, oldest batch first, once the store answers again; events
// keep their ids, so a batch replayed twice (after a crash between the
// store's commit and the spool's acknowledgement) is stored once.
//
// Append may be called by several goroutines at once (the pipeline's
// writers; batches committing together have no order between them); Run
// runs once, concurrently with it; Status is safe for concurrent use at any
// time. Close after Run returned and the last Append did. A directory
// serves one Spool at a time; a Spool opened on a directory a killed
// process left replays what it holds.
type Spool struct {
	store agenttrail.Appender
	cfg   SpoolConfig
	log   *slog.Logger
	m     *spoolMetrics
	file  *spoollog.Log

	wake chan struct{} // capacity 1: "a batch was spooled"

	mu        sync.Mutex
	lastErr   error     // the store failure that started spooling, nil once drained
	downSince time.Time // when the store last failed
	full      bool      // the last Append was refused for lack of room
}

// OpenSpool opens (creating it when needed) the spool in cfg.Dir in front
// of store. Batches a previous process left in the directory are replayed
// by Run.
func OpenSpool(store agenttrail.Appender, cfg SpoolConfig) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("open spool: no directory")
	}
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	// Segments of a sixteenth of the bound, within 1 to 64 MiB: few files
	// for a large spool, and disk given back as the replay goes.
	f, err := spoollog.Open(cfg.Dir, spoollog.Options{
		MaxBytes:     cfg.MaxBytes,
		SegmentBytes: min(max(cfg.MaxBytes/16, 1<<20), 64<<20),
	})
	if err != nil {
		return nil, err
	}
	s := &Spool{store: store, cfg: cfg, log: logger, file: f, wake: make(chan struct{}, 1)}
	s.m = newSpoolMetrics(cfg.Registerer, s.file)
	if st := f.Stats(); st.Records > 0 {
		logger.Warn("the spool holds batches from an earlier run; replaying them", "batches", st.Records, "bytes", st.Bytes)
		s.lastErr = errors.New("batches left by an earlier run")
		s.downSince = time.Now()
	}
	return s, nil
}

// Append stores batch in the store, or in the spool while the store fails
// or the spool holds older batches. A spooled batch is reported as
// AppendResult{Spooled: len(batch)}: all of a batch goes to one place. The
// store's EINVALID and ETOOLARGE errors pass through unspooled, because
// replaying the batch would fail the same way. When the spool cannot take
// the batch it returns an EUNAVAILABLE error (wrapping ErrSpoolFull when it
// is full).
func (s *Spool) Append(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	if len(batch) == 0 {
		return agenttrail.AppendResult{}, nil
	}
	// Only Append adds records, and Run acknowledges a record only after
	// the store took it: when the spool is empty here, nothing older is
	// waiting, so this batch may go to the store directly.
	if s.file.Stats().Records == 0 {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
		res, err := s.store.Append(sctx, batch)
		cancel()
		if err == nil {
			s.recover()
			return res, nil
		}
		switch agenttrail.ErrorCode(err) {
		case agenttrail.EINVALID, agenttrail.ETOOLARGE:
			return res, err
		}
		s.storeFailed(err)
	}
	return s.spool(batch)
}

// spool writes batch to the spool.
func (s *Spool) spool(batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	for i := range batch {
		// A failed Append may have numbered some events; the store numbers
		// them again at replay.
		batch[i].Seq = 0
	}
	payload, err := json.Marshal(batch)
	if err != nil {
		return agenttrail.AppendResult{}, fmt.Errorf("spool: encode batch: %w", err)
	}
	err = s.file.Append(payload)
	s.mu.Lock()
	s.full = errors.Is(err, spoollog.ErrFull)
	if s.lastErr == nil {
		// Run drained the spool between Append's look at it and now.
		s.lastErr, s.downSince = errors.New("older spooled batches were being replayed"), time.Now()
	}
	s.mu.Unlock()
	switch {
	case errors.Is(err, spoollog.ErrFull):
		return agenttrail.AppendResult{}, fmt.Errorf("%w: %w", agenttrail.Errorf(agenttrail.EUNAVAILABLE,
			"the store is unavailable and the server's spool is full (%d bytes); retry later", s.cfg.MaxBytes), ErrSpoolFull)
	case err != nil:
		s.log.Error("cannot write the spool", "events", len(batch), "err", err)
		return agenttrail.AppendResult{}, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "the store is unavailable and the server's spool cannot be written; retry later")
	}
	s.m.spooled.Add(float64(len(batch)))
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return agenttrail.AppendResult{Spooled: len(batch)}, nil
}

func (s *Spool) storeFailed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr == nil {
		s.downSince = time.Now()
		s.log.Error("the store failed; spooling events until it is back", "err", err)
	}
	s.lastErr = err
}

// recover notes that the store took a batch and the spool is empty.
func (s *Spool) recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil && s.file.Stats().Records == 0 {
		s.log.Info("the store is back and the spool is replayed", "down_for", time.Since(s.downSince).Round(time.Millisecond))
		s.lastErr = nil
	}
	s.full = false
}

// Run replays the spool into the store until ctx ends, then returns nil.
// After a failure it waits with jittered exponential backoff (probing the
// store with Ping when the store has one) before trying the same batch
// again, so batches reach the store in the order they were spooled.
func (s *Spool) Run(ctx context.Context) error {
	pinger, _ := s.store.(interface{ Ping(context.Context) error })
	failures := 0
	for {
		if s.file.Stats().Records == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
				continue
			}
		}
		err := s.probe(ctx, pinger)
		if err == nil {
			err = s.replayOne(ctx)
		}
		if err == nil {
			failures = 0
			if s.file.Stats().Records == 0 {
				s.recover()
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		failures++
		s.storeFailed(err)
		d := backoff(failures, s.cfg.MaxBackoff)
		s.log.Debug("spool replay failed; retrying", "err", err, "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (s *Spool) probe(ctx context.Context, pinger interface{ Ping(context.Context) error }) error {
	if pinger == nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, min(s.cfg.StoreTimeout, 5*time.Second))
	defer cancel()
	return pinger.Ping(pctx)
}

// Bounds of one replay Append: spooled batches are coalesced up to these,
// so a spool of many small batches replays in few transactions.
const (
	replayMaxBatches = 64
	replayMaxBytes   = 16 << 20
)

// replayOne appends the oldest spooled batches to the store, as one batch,
// and removes them from the spool.
func (s *Spool) replayOne(ctx context.Context) error {
	payloads, err := s.file.Peek(replayMaxBatches, replayMaxBytes)
	if err != nil || len(payloads) == 0 {
		return err
	}
	var batch []agenttrail.Event
	for _, payload := range payloads {
		var part []agenttrail.Event
		if err := json.Unmarshal(payload, &part); err != nil || len(part) == 0 {
			// The CRC matched, so this is not a torn write; it cannot be
			// replayed by anyone, and must not block the batches behind it.
			s.log.Error("a spooled batch does not decode; discarding it", "err", err)
			s.m.discarded.WithLabelValues(discardUndecodable).Inc()
			continue
		}
		batch = append(batch, part...)
	}
	var res agenttrail.AppendResult
	if len(batch) > 0 {
		actx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
		res, err = s.store.Append(actx, batch)
		cancel()
	}
	switch agenttrail.ErrorCode(err) {
	case "":
	case agenttrail.EINVALID, agenttrail.ETOOLARGE:
		if res, err = s.replayEach(ctx, batch); err != nil {
			return err
		}
	default:
		return err
	}
	s.m.replayed.Add(float64(res.Inserted))
	s.m.replayedDuplicates.Add(float64(res.Duplicates))
	if err := s.file.Ack(); err != nil {
		// The batches are stored; replaying them again is harmless.
		s.log.Error("cannot record spool replay progress", "err", err)
	}
	return nil
}

// replayEach appends the events of a batch the store refused one by one,
// so one event it refuses loses no other. It stops at the first failure
// that is not a refusal; the events already stored deduplicate next time.
func (s *Spool) replayEach(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	var total agenttrail.AppendResult
	for i := range batch {
		actx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
		res, err := s.store.Append(actx, batch[i:i+1])
		cancel()
		switch agenttrail.ErrorCode(err) {
		case "":
			total.Inserted += res.Inserted
			total.Duplicates += res.Duplicates
		case agenttrail.EINVALID, agenttrail.ETOOLARGE:
			s.log.Error("the store refused a spooled event; discarding it", "id", batch[i].ID, "org", batch[i].Org, "err", err)
			s.m.discarded.WithLabelValues(discardRefused).Inc()
		default:
			return total, err
		}
	}
	return total, nil
}

// backoff returns the jittered wait after n consecutive failures: from
// 100 ms, doubling, up to max.
func backoff(n int, max time.Duration) time.Duration {
	d := 100 * time.Millisecond << min(n-1, 20)
	if d <= 0 || d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// SpoolStatus is what a Spool holds and why.
type SpoolStatus struct {
	Batches int   // batches waiting to be replayed
	Bytes   int64 // size of the spool's files
	Full    bool  // the last batch was refused for lack of room
	// StoreError is the store failure that sent batches to the spool; nil
	// when the store takes batches directly.
	StoreError error
	Since      time.Time // when the store failed, if StoreError is set
}

// Status returns the spool's current state.
func (s *Spool) Status() SpoolStatus {
	fs := s.file.Stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	return SpoolStatus{Batches: fs.Records, Bytes: fs.Bytes, Full: s.full, StoreError: s.lastErr, Since: s.downSince}
}

// Degraded reports why ingest does not go straight to the store ("" when
// it does), and whether the spool is refusing batches for lack of room.
func (s *Spool) Degraded() (reason string, refusing bool) {
	st := s.Status()
	if st.StoreError == nil && st.Batches == 0 {
		return "", false
	}
	// The store's own error is logged, not shown: /readyz is open to all.
	reason = fmt.Sprintf("the store is unavailable since %s; %d batches (%d bytes) spooled, replayed when it answers",
		st.Since.UTC().Format(time.RFC3339), st.Batches, st.Bytes)
	if st.Full {
		reason = fmt.Sprintf("the store is unavailable since %s and the spool is full (%d bytes); ingest is refused",
			st.Since.UTC().Format(time.RFC3339), st.Bytes)
	}
	return reason, st.Full
}

// Close closes the spool's files; what it holds stays for the next
// OpenSpool.
func (s *Spool) Close() error {
	return s.file.Close()
}
