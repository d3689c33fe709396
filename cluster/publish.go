package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agenttrail/agenttrail"
)

// Publisher is the commit step of an ingest node: an agenttrail.Appender
// that publishes each event to the stream and returns only once JetStream
// acknowledged every one. Put behind ingest.Spool, it makes an ingest node
// spool while NATS is unreachable and replay when it is back, exactly as a
// single server does while its store is down.
type Publisher struct {
	c *Conn
	// AckTimeout bounds the wait for JetStream's acknowledgements of one
	// batch (default 5 s); past it the batch fails and is spooled.
	AckTimeout time.Duration
}

// NewPublisher returns a Publisher on c.
func NewPublisher(c *Conn) *Publisher {
	return &Publisher{c: c, AckTimeout: 5 * time.Second}
}

// Append publishes batch. The events are durable on the stream, not yet in
// the store, so it reports them all as Spooled. Any failure (NATS down, the
// stream full, no acknowledgement in time) is EUNAVAILABLE for the whole
// batch: re-sending it is safe, the writer's store deduplicates on org and
// id.
func (p *Publisher) Append(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	if len(batch) == 0 {
		return agenttrail.AppendResult{}, nil
	}
	if !p.c.nc.IsConnected() {
		return agenttrail.AppendResult{}, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "NATS is not connected (%s)", p.c.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, p.AckTimeout)
	defer cancel()
	for lo := 0; lo < len(batch); lo += publishWindow {
		if err := p.publish(ctx, batch[lo:min(lo+publishWindow, len(batch))]); err != nil {
			return agenttrail.AppendResult{}, err
		}
	}
	return agenttrail.AppendResult{Spooled: len(batch)}, nil
}

// publish sends events asynchronously and waits for every acknowledgement.
func (p *Publisher) publish(ctx context.Context, events []agenttrail.Event) error {
	futs := make([]jetstream.PubAckFuture, 0, len(events))
	for i := range events {
		ev := &events[i]
		data, err := json.Marshal(ev)
		if err != nil {
			return agenttrail.Errorf(agenttrail.EINVALID, "event %s: encode: %v", ev.ID, err)
		}
		msg := &nats.Msg{Subject: p.c.Subject(ev.Org), Data: data, Header: nats.Header{}}
		f, err := p.c.js.PublishMsgAsync(msg, jetstream.WithMsgID(MsgID(ev.Org, ev.ID)), jetstream.WithExpectStream(p.c.cfg.Stream))
		if err != nil {
			return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "publish to NATS: %v", err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "JetStream did not take an event: %v", err)
		case <-ctx.Done():
			return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "JetStream did not acknowledge the events in time: %v", ctx.Err())
		}
	}
	return nil
}

// Ping reports whether NATS and the stream answer; ingest.Spool probes it
// before replaying.
func (p *Publisher) Ping(ctx context.Context) error { return p.c.Ping(ctx) }
