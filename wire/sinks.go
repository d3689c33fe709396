package wire

import (
	"time"

	"github.com/agenttrail/agenttrail"
)

// SinkStatus is one push sink's state, as GET /v1/sinks shows it (package
// sink, docs/architecture.md "Delivery"). Lag in events counts every event
// committed after the checkpoint (those the sink's filter leaves out too);
// lag in seconds is how long ago the oldest event the sink has yet to
// deliver was received.
type SinkStatus struct {
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	Format      string     `json:"format"`
	Required    bool       `json:"required"`
	Checkpoint  int64      `json:"checkpoint"`
	Head        int64      `json:"head"`
	LagEvents   int64      `json:"lag_events"`
	LagSeconds  float64    `json:"lag_seconds"`
	Delivered   int64      `json:"delivered"`
	Retried     int64      `json:"retried"`
	DeadLetters int64      `json:"dead_letters"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
}

// Sinks is the answer of GET /v1/sinks.
type Sinks struct {
	Sinks []SinkStatus `json:"sinks"`
}

// SinkReplay is the body of POST /v1/sinks/{name}/replay: from_seq N
// delivers again every event from seq N on; since T every event received
// from T on. Exactly one is given.
type SinkReplay struct {
	FromSeq int64     `json:"from_seq,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// SinkReplayResult is the answer of POST /v1/sinks/{name}/replay: the
// checkpoint the sink moved to.
type SinkReplayResult struct {
	Checkpoint int64 `json:"checkpoint"`
}

// DeadLetter is one event a sink's receiver refused for good, as the API
// shows it (the refused event's JSON itself is not part of it).
type DeadLetter = agenttrail.DeadLetter

// DeadLetters is the answer of GET /v1/sinks/{name}/dead-letters.
type DeadLetters struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
}
