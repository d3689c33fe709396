package agenttrail

import (
	"context"
	"time"
)

// SinkLedger keeps what the push sinks (package sink) need to survive a
// restart: each sink's checkpoint and its dead letters, in the store
// itself, so they are as durable as the events and move with them.
//
// Checkpoint returns the seq up to which the sink named sink has delivered
// every event, 0 when it never has. SetCheckpoint records a new one; it
// may move back (a replay). HeadSeq returns the newest seq committed, 0 for
// an empty store.
//
// AddDeadLetters records events a receiver refused for good; the store
// numbers them (ID). DeadLetters returns a sink's dead letters with ID
// greater than afterID, oldest first, at most limit; DeleteDeadLetters
// removes those with the given IDs (resent, or given up on);
// CountDeadLetters counts a sink's. All methods are safe for concurrent use.
type SinkLedger interface {
	Checkpoint(ctx context.Context, sink string) (int64, error)
	SetCheckpoint(ctx context.Context, sink string, seq int64) error
	HeadSeq(ctx context.Context) (int64, error)
	AddDeadLetters(ctx context.Context, sink string, letters []DeadLetter) error
	DeadLetters(ctx context.Context, sink string, afterID int64, limit int) ([]DeadLetter, error)
	DeleteDeadLetters(ctx context.Context, sink string, ids []int64) error
	CountDeadLetters(ctx context.Context, sink string) (int64, error)
}

// DeadLetter is one event a sink's receiver refused for good, with why.
// Event is the event's JSON as it was when refused, so a dead letter
// outlives the event's retention.
type DeadLetter struct {
	ID      int64     `json:"id"`
	Seq     int64     `json:"seq"`
	EventID string    `json:"event_id"`
	Org     string    `json:"org"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
	Event   []byte    `json:"-"`
}
