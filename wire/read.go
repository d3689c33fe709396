package wire

import (
	"encoding/json"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Page is the answer of GET /v1/events. NextCursor continues the query; it
// is empty, sent as null, on the last page. In seq order it is always set,
// so a poller can come back for new events.
type Page struct {
	Events     []agenttrail.Event `json:"events"`
	NextCursor string             `json:"next_cursor"`
}

// MarshalJSON sends a missing cursor as null and no events as [].
func (p Page) MarshalJSON() ([]byte, error) {
	type page struct {
		Events     []agenttrail.Event `json:"events"`
		NextCursor *string            `json:"next_cursor"`
	}
	out := page{Events: p.Events}
	if out.Events == nil {
		out.Events = []agenttrail.Event{}
	}
	if p.NextCursor != "" {
		out.NextCursor = &p.NextCursor
	}
	return json.Marshal(out)
}

// Aggregate is the answer of GET /v1/aggregate: buckets by the value of By,
// largest count first.
type Aggregate struct {
	By      agenttrail.Dimension `json:"by"`
	Buckets []agenttrail.Bucket  `json:"buckets"`
}

// Timeseries is the answer of GET /v1/timeseries: one bucket per Interval
// from the one holding Since up to Until, empty ones included.
type Timeseries struct {
	Interval agenttrail.Interval     `json:"interval"`
	By       agenttrail.Dimension    `json:"by,omitempty"`
	Since    time.Time               `json:"since"`
	Until    time.Time               `json:"until"`
	Buckets  []agenttrail.TimeBucket `json:"buckets"`
}

// Gaps is the answer of GET /v1/gaps: heartbeat gaps per agent and sequence
// gaps per producer within [Since, Until). Neither list is null.
type Gaps struct {
	Since      time.Time                 `json:"since"`
	Until      time.Time                 `json:"until"`
	Heartbeats []agenttrail.HeartbeatGap `json:"heartbeats"`
	Sequences  []agenttrail.SequenceGap  `json:"sequences"`
}

// Status is the answer of /livez and /readyz when they pass: "ok", or, from
// /readyz, "degraded" while ingest is accepted into the server's spool
// instead of the store; Reason then says why.
type Status struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Cluster is the node's view of its cluster, on a node run with NATS.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// ClusterStatus is what /readyz of a cluster node reports: its role, its
// NATS connection, the stream's fill against its limits, the writers' lag,
// and on a writer node whether it is the active writer.
type ClusterStatus struct {
	Role          string `json:"role"`
	NATSConnected bool   `json:"nats_connected"`
	// Stream is nil when the stream could not be read.
	Stream *StreamStatus `json:"stream,omitempty"`
	// Consumer is nil before a writer first consumed the stream.
	Consumer *ConsumerStatus `json:"consumer,omitempty"`
	// WriterActive is set on a writer node.
	WriterActive *bool `json:"writer_active,omitempty"`
}

// StreamStatus is the stream's fill: past MaxBytes ingest spools.
// Messages counts batches of events, not events.
type StreamStatus struct {
	Messages      uint64  `json:"messages"`
	Bytes         uint64  `json:"bytes"`
	MaxBytes      int64   `json:"max_bytes"`
	MaxAgeSeconds float64 `json:"max_age_seconds"`
}

// ConsumerStatus is the writers' lag, in messages of the stream (each a
// batch of events of one org): not fetched by a writer yet (Pending),
// fetched and not yet committed (AckPending), and delivered more than
// once (Redelivered).
type ConsumerStatus struct {
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
}
