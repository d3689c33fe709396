package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/internal/eventjson"
)

// Publisher is the commit step of an ingest node: an agenttrail.Appender
// that publishes each batch to the stream and returns only once JetStream
// acknowledged all of it. Put behind ingest.Spool, it makes an ingest node
// spool while NATS is unreachable and replay when it is back, exactly as a
// single server does while its store is down.
//
// A batch goes to the stream as few messages as it can: one per org (the
// subject is the org's), split where a message would pass the server's
// max_payload. The cost of the stream is per message (the server's store,
// the acknowledgements, the writer's fetch and ack), so events sharing a
// message share it.
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
// batch: re-sending it is safe, JetStream drops a message it has taken
// already (its id is its events'), and the writer's store deduplicates on
// org and id what comes in another message.
func (p *Publisher) Append(ctx context.Context, batch []agenttrail.Event) (agenttrail.AppendResult, error) {
	if len(batch) == 0 {
		return agenttrail.AppendResult{}, nil
	}
	if !p.c.nc.IsConnected() {
		return agenttrail.AppendResult{}, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "NATS is not connected (%s)", p.c.nc.Status())
	}
	msgs, err := p.c.messages(batch)
	if err != nil {
		return agenttrail.AppendResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.AckTimeout)
	defer cancel()
	for lo := 0; lo < len(msgs); lo += publishWindow {
		if err := p.publish(ctx, msgs[lo:min(lo+publishWindow, len(msgs))]); err != nil {
			return agenttrail.AppendResult{}, err
		}
	}
	return agenttrail.AppendResult{Spooled: len(batch)}, nil
}

// message is one message of the stream: events of one org, encoded.
type message struct {
	subject, id string
	data        []byte
}

// messages encodes batch as the stream's messages: per org, in the order
// of the batch, each event a line of JSON (package eventjson, what
// encoding/json writes), a message ending before it would pass the
// server's max_payload (less room for the headers). The split depends only
// on the batch and the limit, so a batch published again gives the same
// messages, with the same ids.
func (c *Conn) messages(batch []agenttrail.Event) ([]message, error) {
	limit := int(c.nc.MaxPayload()) - headerRoom
	var orgs []string
	byOrg := map[string][]int{}
	for i := range batch {
		org := batch[i].Org
		if _, ok := byOrg[org]; !ok {
			orgs = append(orgs, org)
		}
		byOrg[org] = append(byOrg[org], i)
	}
	var out []message
	for _, org := range orgs {
		var data []byte
		var ids []string
		flush := func() {
			out = append(out, message{subject: c.Subject(org), id: batchMsgID(org, ids), data: data})
		}
		for _, i := range byOrg[org] {
			ev := &batch[i]
			start := len(data)
			var ok bool
			if data, ok = eventjson.Append(data, ev); !ok {
				line, err := json.Marshal(ev)
				if err != nil {
					return nil, agenttrail.Errorf(agenttrail.EINVALID, "event %s: encode: %v", ev.ID, err)
				}
				data = append(append(data[:start], line...), '\n')
			}
			if len(ids) > 0 && len(data) > limit {
				// The event goes to the next message.
				line := data[start:]
				data = data[:start:start]
				flush()
				data, ids = append([]byte(nil), line...), nil
			}
			ids = append(ids, ev.ID)
		}
		flush()
	}
	return out, nil
}

// headerRoom is what a message's headers (its id, the expected stream)
// take of the server's max_payload, with room to spare.
const headerRoom = 1 << 10

// batchMsgID is the Nats-Msg-Id of a message holding the events of org
// with ids, in that order: a digest of them (each length-prefixed, so no
// two lists digest the same bytes), so the same events published again
// are the same message to JetStream's duplicate window.
func batchMsgID(org string, ids []string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, s := range append([]string{org}, ids...) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// publish sends msgs asynchronously and waits for every acknowledgement.
func (p *Publisher) publish(ctx context.Context, msgs []message) error {
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		msg := &nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{}}
		f, err := p.c.js.PublishMsgAsync(msg, jetstream.WithMsgID(m.id), jetstream.WithExpectStream(p.c.cfg.Stream))
		if err != nil {
			return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "publish to NATS: %v", err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "JetStream did not take the events: %v", err)
		case <-ctx.Done():
			return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "JetStream did not acknowledge the events in time: %v", ctx.Err())
		}
	}
	return nil
}

// Ping reports whether NATS and the stream answer; ingest.Spool probes it
// before replaying.
func (p *Publisher) Ping(ctx context.Context) error { return p.c.Ping(ctx) }
