package cluster

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status is what a node knows of the cluster: its NATS connection, the
// stream's fill against its limits, and the writers' consumer lag. Its
// counts are of messages: a message holds the events of one org of one
// batch an ingest node published.
type Status struct {
	Connected bool
	// Stream is false when the stream could not be read.
	Stream          bool
	Messages, Bytes uint64
	MaxBytes        int64
	MaxAge          time.Duration
	// Consumer is false when the writers' consumer does not exist yet.
	Consumer                bool
	Pending                 uint64 // messages no writer has fetched
	AckPending, Redelivered int    // fetched, not yet acknowledged; delivered more than once
}

// Status reads the stream's and the consumer's state, within ctx.
func (c *Conn) Status(ctx context.Context) Status {
	st := Status{Connected: c.nc.IsConnected()}
	if !st.Connected {
		return st
	}
	s, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return st
	}
	info, err := s.Info(ctx)
	if err != nil {
		return st
	}
	st.Stream = true
	st.Messages, st.Bytes = info.State.Msgs, info.State.Bytes
	st.MaxBytes, st.MaxAge = info.Config.MaxBytes, info.Config.MaxAge
	cons, err := s.Consumer(ctx, c.cfg.Durable)
	if err != nil {
		return st
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return st
	}
	st.Consumer = true
	st.Pending, st.AckPending, st.Redelivered = ci.NumPending, ci.NumAckPending, ci.NumRedelivered
	return st
}

// Collector exports a node's Status, and its writer's state when it has
// one, on /metrics; it reads them at each scrape.
type Collector struct {
	c *Conn
	w *Writer // nil on a node without a writer

	connected, streamMsgs, streamBytes, streamMaxBytes, streamMaxAge *prometheus.Desc
	pending, ackPending, redelivered                                 *prometheus.Desc
	active, committed, duplicates, refused                           *prometheus.Desc
}

// NewCollector returns the collector of c and, when not nil, w.
func NewCollector(c *Conn, w *Writer) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("agenttrail_"+name, help, nil, nil)
	}
	return &Collector{
		c: c, w: w,
		connected:      d("nats_connected", "Whether this node is connected to NATS (1) or not (0)."),
		streamMsgs:     d("nats_stream_messages", "Messages in the stream, each a batch of events of one org (committed ones stay until the stream's limits remove them)."),
		streamBytes:    d("nats_stream_bytes", "Bytes the stream holds."),
		streamMaxBytes: d("nats_stream_max_bytes", "The stream's byte limit; past it ingest spools."),
		streamMaxAge:   d("nats_stream_max_age_seconds", "The stream's age limit."),
		pending:        d("nats_consumer_pending", "Messages (batches of events) in the stream no writer has fetched yet: the writers' lag."),
		ackPending:     d("nats_consumer_ack_pending", "Messages fetched by a writer and not yet acknowledged (being committed)."),
		redelivered:    d("nats_consumer_redelivered", "Messages delivered to a writer more than once and not yet acknowledged."),
		active:         d("writer_active", "Whether this writer holds the lock and commits the stream (1), or stands by (0)."),
		committed:      d("writer_committed_events_total", "Events of the stream this writer stored."),
		duplicates:     d("writer_duplicate_events_total", "Events of the stream this writer found stored already (redeliveries)."),
		refused:        d("writer_refused_events_total", "Events of the stream the store refused; dropped and logged."),
	}
}

// Describe implements prometheus.Collector.
func (m *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.connected, m.streamMsgs, m.streamBytes, m.streamMaxBytes, m.streamMaxAge, m.pending, m.ackPending, m.redelivered} {
		ch <- d
	}
	if m.w != nil {
		ch <- m.active
		ch <- m.committed
		ch <- m.duplicates
		ch <- m.refused
	}
}

// Collect implements prometheus.Collector.
func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st := m.c.Status(ctx)
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(m.connected, b2f(st.Connected))
	if st.Stream {
		g(m.streamMsgs, float64(st.Messages))
		g(m.streamBytes, float64(st.Bytes))
		g(m.streamMaxBytes, float64(st.MaxBytes))
		g(m.streamMaxAge, st.MaxAge.Seconds())
	}
	if st.Consumer {
		g(m.pending, float64(st.Pending))
		g(m.ackPending, float64(st.AckPending))
		g(m.redelivered, float64(st.Redelivered))
	}
	if m.w != nil {
		g(m.active, b2f(m.w.Active()))
		c := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
		}
		c(m.committed, m.w.committed.Load())
		c(m.duplicates, m.w.dups.Load())
		c(m.refused, m.w.refused.Load())
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
