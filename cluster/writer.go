package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/internal/eventjson"
)

// Committer commits events already checked and redacted by an ingest node;
// *ingest.Pipeline is one (Commit).
type Committer interface {
	Commit(ctx context.Context, events []agenttrail.Event) (agenttrail.AppendResult, []ingest.Rejection, error)
}

// WriterConfig tunes a Writer; zero fields take their defaults.
type WriterConfig struct {
	// BatchBytes is the most bytes of messages fetched and committed at
	// once (default 4 MiB: thousands of events). A message holds a batch
	// of an ingest node's events; a fetch takes at least one whole message
	// whatever BatchBytes says.
	BatchBytes int
	// FetchWait is how long one fetch waits for messages (default 1 s).
	FetchWait time.Duration
	// LockPoll is how often a standby tries the lock, and an active
	// writer checks it still holds it (default 2 s). A standby takes over
	// within about LockPoll of the active writer's death.
	LockPoll time.Duration
	// AckWait is how long JetStream waits for a commit's acknowledgement
	// before redelivering (default 30 s).
	AckWait time.Duration
	// Logger logs the writer's life; nil discards.
	Logger *slog.Logger
}

func (c WriterConfig) withDefaults() WriterConfig {
	defaults.Positive(&c.BatchBytes, 4<<20)
	defaults.Positive(&c.FetchWait, time.Second)
	defaults.Positive(&c.LockPoll, 2*time.Second)
	defaults.Positive(&c.AckWait, 30*time.Second)
	defaults.Logger(&c.Logger)
	return c
}

// Writer consumes the stream with a durable pull consumer and commits what
// it fetches through a Committer, acknowledging messages only after their
// commit: a writer that dies between the two leaves them to be redelivered,
// and the store deduplicates them on org and id. Only the writer holding
// the Lock consumes; the others wait as standbys.
type Writer struct {
	c      *Conn
	commit Committer
	ex     *Exclusive
	cfg    WriterConfig
	log    *slog.Logger

	committed atomic.Int64 // events stored
	dups      atomic.Int64 // events found stored already
	refused   atomic.Int64 // events the store refused (acknowledged, logged)
}

// NewWriter returns a writer of c's stream into commit, guarded by lock.
func NewWriter(c *Conn, commit Committer, lock Lock, cfg WriterConfig) *Writer {
	cfg = cfg.withDefaults()
	return &Writer{c: c, commit: commit, cfg: cfg, log: cfg.Logger,
		ex: &Exclusive{Lock: lock, Poll: cfg.LockPoll, What: "writer", Log: cfg.Logger}}
}

// Active reports whether this writer holds the lock and consumes.
func (w *Writer) Active() bool { return w.ex.Active() }

// Run waits for the lock, consumes while it holds it, and waits again if
// it loses it, until ctx ends; then it releases the lock and returns nil.
// A batch being committed when ctx ends is committed and acknowledged.
func (w *Writer) Run(ctx context.Context) error {
	return w.ex.Run(ctx, w.consume)
}

// consume commits batches until ctx ends or the lock is lost. The next
// batch is fetched while one is committed (prefetch), so the writer waits
// on NATS and on the store at the same time rather than in turn.
func (w *Writer) consume(ctx context.Context, held func(context.Context) error) error {
	cons, err := w.c.js.CreateOrUpdateConsumer(ctx, w.c.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       w.c.cfg.Durable,
		Description:   "agenttrail writers: the active one commits events into the store",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxAckPending: maxAckPending,
		FilterSubject: w.c.cfg.Subject + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return err
	}
	fetchCtx, stopFetch := context.WithCancel(ctx)
	batches := make(chan []jetstream.Msg, 1)
	go w.prefetch(fetchCtx, cons, batches)
	defer func() {
		// What was fetched and not committed goes back at once.
		stopFetch()
		for msgs := range batches {
			nakAll(msgs)
		}
	}()
	// Two batches commit at once: the write path merges them into one
	// transaction when the first is still queued, and the store is never
	// idle while a batch is acknowledged. Both complete before consume
	// returns.
	slots := make(chan struct{}, commitsInFlight)
	defer func() {
		for range commitsInFlight {
			slots <- struct{}{}
		}
	}()
	idle := time.NewTicker(w.cfg.LockPoll)
	defer idle.Stop()
	for {
		var msgs []jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case msgs = <-batches:
		case <-idle.C: // no batch for a while: check the lock all the same
		}
		// The lock may have gone while the fetch waited: a writer that is
		// no longer active must not commit (the new one will).
		if err := held(ctx); err != nil {
			nakAll(msgs)
			return err
		}
		if len(msgs) == 0 {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			nakAll(msgs)
			return nil
		}
		go func() {
			defer func() { <-slots }()
			if err := w.commitBatch(ctx, msgs); err != nil {
				w.log.Warn("commit failed; the stream keeps the events", "events", len(msgs), "err", err)
				nakAll(msgs)
				sleep(ctx, time.Second)
			}
		}()
	}
}

// commitsInFlight is how many batches a writer commits at once.
const commitsInFlight = 2

// fetchMessages is the most messages one fetch takes: BatchBytes of
// single-event messages, about.
const fetchMessages = 4096

// maxAckPending bounds the messages fetched and not yet acknowledged. The
// writer holds at most commitsInFlight batches and one prefetched, so this
// is no limit in practice (a batch of 4 MiB in messages of one event each
// is a few thousand); the server's default, 1,000, would be.
const maxAckPending = 100_000

// prefetch fetches batches into out until ctx ends, then closes out.
func (w *Writer) prefetch(ctx context.Context, cons jetstream.Consumer, out chan<- []jetstream.Msg) {
	defer close(out)
	for ctx.Err() == nil {
		// A fetch whose byte budget is below the next message's size gets
		// nothing, ever: the budget is at least the largest message. The
		// count bounds the client's buffer for the fetch (FetchBytes alone
		// allocates one for a million messages, each time).
		batch, err := cons.Fetch(fetchMessages,
			jetstream.FetchMaxBytes(max(w.cfg.BatchBytes, int(w.c.nc.MaxPayload())+headerRoom)),
			jetstream.FetchMaxWait(w.cfg.FetchWait))
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("fetch from the stream failed", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil {
			w.log.Debug("fetch ended early", "err", err)
		}
		if len(msgs) == 0 {
			continue
		}
		select {
		case out <- msgs:
		case <-ctx.Done():
			nakAll(msgs)
		}
	}
}

// commitBatch commits the events of msgs and acknowledges the messages.
// A message that does not decode is terminated, all of it: nobody could
// ever commit it.
func (w *Writer) commitBatch(ctx context.Context, msgs []jetstream.Msg) error {
	// A line per event: sized once, the events are not copied as the
	// slice grows (an Event is large, and a batch thousands of them).
	n := 0
	for _, m := range msgs {
		n += bytes.Count(m.Data(), []byte{'\n'})
	}
	events := make([]agenttrail.Event, 0, n)
	kept := msgs[:0:0]
	for _, m := range msgs {
		var err error
		if events, err = decode(events, m.Data()); err != nil {
			w.log.Error("a message of the stream is not events; dropping it", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		kept = append(kept, m)
	}
	if len(events) == 0 {
		for _, m := range kept {
			_ = m.Ack()
		}
		return nil
	}
	// A batch being committed completes even when ctx ends.
	res, refused, err := w.commit.Commit(context.WithoutCancel(ctx), events)
	if err != nil {
		return err
	}
	for _, r := range refused {
		w.log.Error("the store refused an event of the stream; dropping it", "id", events[r.Index].ID, "org", events[r.Index].Org, "err", r.Err)
	}
	w.committed.Add(int64(res.Inserted))
	w.dups.Add(int64(res.Duplicates))
	w.refused.Add(int64(len(refused)))
	for _, m := range kept {
		if err := m.Ack(); err != nil {
			// Redelivered later and deduplicated by the store.
			w.log.Warn("acknowledging a committed message failed", "err", err)
		}
	}
	return nil
}

// decode appends to events those of a message, a JSON event a line
// (package eventjson's fast path, encoding/json's where it gives up). On an
// error it returns events as they were.
func decode(events []agenttrail.Event, data []byte) ([]agenttrail.Event, error) {
	n := len(events)
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		events = append(events, agenttrail.Event{})
		ev := &events[len(events)-1]
		if end, ok := eventjson.Decode(line, 0, ev); ok && end == len(line) {
			continue
		}
		*ev = agenttrail.Event{}
		if err := json.Unmarshal(line, ev); err != nil {
			return events[:n], err
		}
	}
	return events, nil
}

func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.NakWithDelay(time.Second)
	}
}
