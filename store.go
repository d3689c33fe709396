package agenttrail

import (
	"context"
	"math"
	"reflect"
	"time"
)

// Appender stores batches of events.
//
// Append stores every event of batch in one transaction, or none of them.
// The events must have been normalized and validated. It skips an event whose
// (Org, ID) is already stored, or repeated earlier in the same batch, and
// leaves that event's Seq at 0; every stored event gets the next Seq, in
// batch order, so Seq is the store-wide commit order. The same transaction
// updates the rollups. Implementations serialize Append calls internally:
// Seq order must equal commit order, which concurrent writers would break.
type Appender interface {
	Append(ctx context.Context, batch []Event) (AppendResult, error)
}

// AppendResult counts what one Append stored and skipped. Spooled counts
// events a server-side spool (ingest.Spool) took instead of the store while
// the store was unavailable: durable, but neither stored nor known to be
// duplicates yet. Stores leave it 0.
type AppendResult struct {
	Inserted   int
	Duplicates int
	Spooled    int
}

// Getter reads one event.
//
// Get returns the event with the given id among those f matches (the server
// passes the caller's org scope in f.Org), or an ENOTFOUND error. When ids
// collide across orgs, the one with the lowest Seq is returned.
type Getter interface {
	Get(ctx context.Context, id string, f Filter) (Event, error)
}

// Querier reads pages of events.
//
// Query returns at most q.Limit events matching q.Filter in q.Sort order,
// strictly after q.After when it is set. It is safe for concurrent use with
// Append and sees only committed batches.
type Querier interface {
	Query(ctx context.Context, q Query) (Page, error)
}

// Aggregator groups events.
//
// Aggregate returns one bucket per distinct value of by among the events f
// matches, largest count first (ties by key). Events that have no value for
// by (an empty project, a non-LLM event's model) fall in the bucket with key
// "". It reads rollups whenever f allows, so its cost grows with the number
// of hour buckets, not of events; results are exact either way.
type Aggregator interface {
	Aggregate(ctx context.Context, f Filter, by Dimension) ([]Bucket, error)
}

// Serieser counts events over time.
//
// Series returns one bucket per interval from iv.Truncate(f.Since) up to
// f.Until (both set by the caller), empty buckets included, oldest first.
// When by is set, each bucket's By holds counts per key. It reads rollups
// whenever f allows.
type Serieser interface {
	Series(ctx context.Context, f Filter, iv Interval, by Dimension) ([]TimeBucket, error)
}

// GapFinder finds what producers failed to deliver.
//
// HeartbeatGaps returns the heartbeat gaps agenttrail.HeartbeatScan defines,
// from the heartbeats (source "agent", action "heartbeat") and clean stops
// (action "stop") matching f within [f.Since, f.Until): per (org, actor_id,
// producer_id), each heartbeat judged by interval when it is positive, else
// by the interval it states (metadata.interval_ms), else by
// DefaultHeartbeatInterval. A negative interval is EINVALID.
//
// SequenceGaps returns, for each (org, producer_id) matching f, the ranges of
// producer_seq missing between the lowest and highest seen (among events
// with time in f's range). Both are exact: computed from stored events.
type GapFinder interface {
	HeartbeatGaps(ctx context.Context, f Filter, interval time.Duration) ([]HeartbeatGap, error)
	SequenceGaps(ctx context.Context, f Filter) ([]SequenceGap, error)
}

// Retainer deletes old events.
//
// DeleteBefore deletes every event with time before t, with its rollups, and
// returns how many events it deleted. It may work in bounded chunks, or by
// dropping whole partitions, so concurrent Appends are not held up for long.
//
// DeleteByRules deletes each event that the first of rules matching it says
// to delete (its time before that rule's Before), and only events with seq
// at most maxSeq; an event no rule matches is kept. It subtracts what it
// deletes from the rollups, like DeleteBefore, and returns how many events
// each rule deleted, in the order of rules. Neither method touches the
// integrity trees or checkpoints.
type Retainer interface {
	DeleteBefore(ctx context.Context, t time.Time) (int64, error)
	DeleteByRules(ctx context.Context, rules []RetentionRule, maxSeq int64) ([]int64, error)
}

// RetentionRule is one rule of DeleteByRules: the events Filter matches
// that no earlier rule matched are deleted when their time is before
// Before; a zero Before keeps them. Filter sets Source, Org and Project
// only (CheckRetentionRules).
type RetentionRule struct {
	Filter Filter
	Before time.Time
}

// MaxRetentionRules bounds the rules of one DeleteByRules call.
const MaxRetentionRules = 64

// CheckRetentionRules returns an EINVALID error for rules a store cannot
// apply: too many, a filter on anything but source, org and project, or
// more filter values across all rules than one Filter may hold
// (MaxFilterValues), which keeps a store's statements within its bounds.
func CheckRetentionRules(rules []RetentionRule) error {
	if len(rules) > MaxRetentionRules {
		return Invalid("rules", "at most %d retention rules, not %d", MaxRetentionRules, len(rules))
	}
	values := 0
	for i := range rules {
		f := rules[i].Filter
		values += len(f.Source) + len(f.Org) + len(f.Project)
		if !reflect.DeepEqual(f, Filter{Source: f.Source, Org: f.Org, Project: f.Project}) {
			return Invalid("rules", "rule %d: a retention rule filters on source, org and project only", i)
		}
	}
	if values > MaxFilterValues {
		return Invalid("rules", "the retention rules hold %d filter values; at most %d are allowed", values, MaxFilterValues)
	}
	return nil
}

// RetentionRuleOf returns the index of the first of rules that matches e,
// -1 when none does.
func RetentionRuleOf(rules []RetentionRule, e *Event) int {
	for i := range rules {
		if rules[i].Filter.Match(e) {
			return i
		}
	}
	return -1
}

// Pinger reports whether a store's backing database answers: nil when it
// does, the error that says why when it does not.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Store is the contract every storage backend implements; storetest checks
// it. All methods are safe for concurrent use. Close releases the backing
// database; no method may be called after. Code that needs only part of a
// Store (the HTTP API reads, the ingest pipeline appends) takes the
// interfaces above rather than Store.
type Store interface {
	Appender
	Getter
	Querier
	Aggregator
	Serieser
	GapFinder
	Retainer
	Pinger
	Close() error
}

// AddSat returns a+b, or the int64 nearest to it when the sum overflows.
// Stores sum token counters and costs with it: Validate bounds one event's
// usage (MaxLLMTokens, MaxLLMCostUSD), so a sum saturates only after
// billions of events, and then it stays at the limit instead of wrapping
// around to a negative number or failing every later read.
func AddSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// Saturate converts a float sum to int64, saturating at the limits; NaN is
// 0. Go's own conversion of an out-of-range float is undefined.
func Saturate(f float64) int64 {
	switch {
	case f != f:
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}
