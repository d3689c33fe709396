package agenttrail

import (
	"slices"
	"strings"
	"time"
)

// Filter selects events. Each slice is OR within the field and AND across
// fields; an empty slice does not constrain. Since is inclusive, Until
// exclusive; zero means unbounded. Q is a case-insensitive substring matched
// against action, description, resource_id and actor_name. NotSource and
// NotAction exclude: an event whose source (action) is in the set does not
// match, whatever the other fields say. They let a listing hide the trail's
// own bookkeeping (heartbeats, audit reads) without naming every other
// value. TraceID and SessionID select one task: stores read them through
// indexes of their own.
//
// Org is also how callers are scoped: the server intersects it with the
// caller's token before any store sees it, so a store applies it like any
// other field.
type Filter struct {
	ActorID      []string
	ActorType    []string
	Source       []string
	Action       []string
	ResourceType []string
	ResourceID   []string
	Result       []string
	Org          []string
	Project      []string
	StatusCode   []int
	ProducerID   []string
	TraceID      []string
	SessionID    []string
	NotSource    []string
	NotAction    []string
	Since        time.Time
	Until        time.Time
	Q            string
}

// Bounds every store applies to a Filter, so that both answer alike: at
// most MaxFilterValues values across its fields (SQLite binds each as a
// parameter) and a q of at most MaxQBytes.
const (
	MaxFilterValues = 1000
	MaxQBytes       = 2048
)

// Check returns an EINVALID error when f is over the bounds every store
// applies (MaxFilterValues, MaxQBytes), or when q holds a NUL byte, which
// no stored text can hold (Validate refuses it), so that no store answers
// differently for it. The error names the field with the most values.
func (f *Filter) Check() error {
	fields := []struct {
		name string
		n    int
	}{
		{"actor_id", len(f.ActorID)}, {"actor_type", len(f.ActorType)}, {"source", len(f.Source)},
		{"action", len(f.Action)}, {"resource_type", len(f.ResourceType)}, {"resource_id", len(f.ResourceID)},
		{"result", len(f.Result)}, {"org", len(f.Org)}, {"project", len(f.Project)},
		{"status_code", len(f.StatusCode)}, {"producer_id", len(f.ProducerID)},
		{"trace_id", len(f.TraceID)}, {"session_id", len(f.SessionID)},
		{"not_source", len(f.NotSource)}, {"not_action", len(f.NotAction)},
	}
	total, most := 0, 0
	for i, c := range fields {
		total += c.n
		if c.n > fields[most].n {
			most = i
		}
	}
	if total > MaxFilterValues {
		return Invalid(fields[most].name, "the filter holds %d values; at most %d are allowed across all parameters", total, MaxFilterValues)
	}
	if len(f.Q) > MaxQBytes {
		return Invalid("q", "must be at most %d bytes", MaxQBytes)
	}
	if strings.IndexByte(f.Q, 0) >= 0 {
		return Invalid("q", "must not contain NUL, which no stored text holds")
	}
	return nil
}

// Match reports whether e satisfies f. Stores implement the same semantics in
// their query languages; the conformance suite checks them against Match.
func (f *Filter) Match(e *Event) bool {
	return in(f.ActorID, e.ActorID) && in(f.ActorType, string(e.ActorType)) &&
		in(f.Source, e.Source) && in(f.Action, e.Action) &&
		in(f.ResourceType, e.ResourceType) && in(f.ResourceID, e.ResourceID) &&
		in(f.Result, string(e.Result)) && in(f.Org, e.Org) && in(f.Project, e.Project) &&
		in(f.StatusCode, e.StatusCode) && in(f.ProducerID, e.ProducerID) &&
		in(f.TraceID, e.TraceID) && in(f.SessionID, e.SessionID) &&
		!slices.Contains(f.NotSource, e.Source) && !slices.Contains(f.NotAction, e.Action) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until)) &&
		(f.Q == "" || containsFold(e.Action, f.Q) || containsFold(e.Description, f.Q) ||
			containsFold(e.ResourceID, f.Q) || containsFold(e.ActorName, f.Q))
}

// in reports whether v is in set; an empty set does not constrain.
func in[T comparable](set []T, v T) bool {
	return len(set) == 0 || slices.Contains(set, v)
}

// containsFold reports whether substr is in s, ignoring ASCII case. Stores
// fold ASCII only (SQL lower()), so the domain does the same.
func containsFold(s, substr string) bool {
	n := len(substr)
	for i := 0; i+n <= len(s); i++ {
		if equalFoldASCII(s[i:i+n], substr) {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Sort is the order of a page of events.
type Sort string

// The sort orders of GET /v1/events. SortSeq is commit order: a poller that
// follows next_cursor in seq order never misses an event that arrived late
// with an old time.
const (
	SortTimeDesc Sort = "-time" // newest first, ties by seq descending (default)
	SortTimeAsc  Sort = "time"  // oldest first, ties by seq ascending
	SortSeq      Sort = "seq"   // commit order
)

// Page sizes of GET /v1/events.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Query asks for one page of events. After, when set, is the position of the
// last event of the previous page: the store returns events strictly after it
// in Sort order. Limit is at least 1; stores accept limits above MaxLimit for
// internal callers such as export.
type Query struct {
	Filter Filter
	Sort   Sort
	Limit  int
	After  *Position
}

// Position is a keyset position: the sort key of one event.
type Position struct {
	Time time.Time
	Seq  int64
}

// PositionOf returns e's position.
func PositionOf(e *Event) Position { return Position{Time: e.Time, Seq: e.Seq} }

// Page is one page of events. Next is the position to continue from, nil when
// the page was the last one; in SortSeq order stores always set it (to After,
// or to the zero position, when the page is empty) so pollers can come back.
type Page struct {
	Events []Event
	Next   *Position
}

// Dimension is a field events are grouped by. DimTraceID and DimSessionID
// have as many values as there are tasks: stores group them from the
// events, never from rollups.
type Dimension string

// The dimensions of GET /v1/aggregate and /v1/timeseries. DimModel groups by
// metadata.llm.model.
const (
	DimSource       Dimension = "source"
	DimActorType    Dimension = "actor_type"
	DimActorID      Dimension = "actor_id"
	DimResult       Dimension = "result"
	DimAction       Dimension = "action"
	DimResourceType Dimension = "resource_type"
	DimOrg          Dimension = "org"
	DimProject      Dimension = "project"
	DimModel        Dimension = "model"
	DimTraceID      Dimension = "trace_id"
	DimSessionID    Dimension = "session_id"
)

// Dimensions lists every Dimension: those stores keep rollups for, in that
// order, then the two of one task.
var Dimensions = []Dimension{DimSource, DimActorType, DimActorID, DimResult, DimAction, DimResourceType, DimOrg, DimProject, DimModel,
	DimTraceID, DimSessionID}

// RolledDimensions are the dimensions both stores keep a rollup per value
// of, besides org and project, which every rollup row carries: a filter on
// one of them (and on org, project and time) is answered from rollups.
var RolledDimensions = []Dimension{DimSource, DimActorType, DimActorID, DimResult, DimAction, DimResourceType}

// DimensionValues returns the field of f that filters on dimension d, and
// nil for a dimension no filter field matches (model).
func (f *Filter) DimensionValues(d Dimension) *[]string {
	switch d {
	case DimSource:
		return &f.Source
	case DimActorType:
		return &f.ActorType
	case DimActorID:
		return &f.ActorID
	case DimResult:
		return &f.Result
	case DimAction:
		return &f.Action
	case DimResourceType:
		return &f.ResourceType
	case DimOrg:
		return &f.Org
	case DimProject:
		return &f.Project
	case DimTraceID:
		return &f.TraceID
	case DimSessionID:
		return &f.SessionID
	}
	return nil
}

// Valid reports whether d is one of Dimensions.
func (d Dimension) Valid() bool {
	for _, x := range Dimensions {
		if d == x {
			return true
		}
	}
	return false
}

// InvalidDimension returns the EINVALID error, naming the parameter by, for
// a dimension that is not one of Dimensions.
func InvalidDimension(d Dimension) *Error {
	names := make([]string, len(Dimensions))
	for i, x := range Dimensions {
		names[i] = string(x)
	}
	return Invalid("by", "must be one of %s, not %q", strings.Join(names, ", "), d)
}

// Bucket is one group of an aggregation: how many events, and the sums of the
// LLM usage of those that were LLM calls.
type Bucket struct {
	Key string `json:"key"`
	Usage
}

// Usage is a count of events and the sums of the LLM usage (metadata.llm)
// of those that were LLM calls, as aggregations and time series report
// them. Its fields are inline in a bucket's JSON.
type Usage struct {
	Count            int64   `json:"count"`
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"`
	CacheReadTokens  int64   `json:"cache_read_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	ReasoningTokens  int64   `json:"reasoning_tokens"`
	CostUSD          float64 `json:"cost_usd"`
}

// Add adds o to u; counts saturate at the int64 limit rather than wrap
// around (AddSat).
func (u *Usage) Add(o Usage) {
	u.Count = AddSat(u.Count, o.Count)
	u.InputTokens = AddSat(u.InputTokens, o.InputTokens)
	u.OutputTokens = AddSat(u.OutputTokens, o.OutputTokens)
	u.CacheReadTokens = AddSat(u.CacheReadTokens, o.CacheReadTokens)
	u.CacheWriteTokens = AddSat(u.CacheWriteTokens, o.CacheWriteTokens)
	u.ReasoningTokens = AddSat(u.ReasoningTokens, o.ReasoningTokens)
	u.CostUSD += o.CostUSD
}

// AddEvent counts e in u and adds its LLM usage, if it has any.
func (u *Usage) AddEvent(e *Event) {
	o := Usage{Count: 1}
	if l, ok := e.LLM(); ok {
		o = Usage{1, l.InputTokens, l.OutputTokens, l.CacheReadTokens, l.CacheWriteTokens, l.ReasoningTokens, l.Cost()}
	}
	u.Add(o)
}

// Interval is the width of a time-series bucket: UTC hours, UTC days, or ISO
// weeks starting on Monday 00:00 UTC.
type Interval string

// The intervals of GET /v1/timeseries.
const (
	Hour Interval = "hour"
	Day  Interval = "day"
	Week Interval = "week"
)

// Truncate returns the start of the bucket that holds t.
func (iv Interval) Truncate(t time.Time) time.Time {
	t = t.UTC()
	switch iv {
	case Day:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case Week:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		back := (int(d.Weekday()) + 6) % 7 // days since Monday
		return d.AddDate(0, 0, -back)
	default:
		return t.Truncate(time.Hour)
	}
}

// MaxBuckets bounds the buckets of one time series; stores refuse a Series
// call over more.
const MaxBuckets = 10000

// Next returns the start of the bucket after the one starting at start.
func (iv Interval) Next(start time.Time) time.Time {
	switch iv {
	case Day:
		return start.AddDate(0, 0, 1)
	case Week:
		return start.AddDate(0, 0, 7)
	default:
		return start.Add(time.Hour)
	}
}

// EmptySeries returns the buckets a Series call over f must answer, all
// still empty: one per interval iv from iv.Truncate(f.Since) up to f.Until,
// each with a By map when by is set. It is an EINVALID error naming the
// parameter when iv or by is not one of theirs, f lacks Since or Until, or
// the range holds more than MaxBuckets buckets. Stores fill what it
// returns.
func EmptySeries(f Filter, iv Interval, by Dimension) ([]TimeBucket, error) {
	switch iv {
	case Hour, Day, Week:
	default:
		return nil, Invalid("interval", "must be hour, day or week, not %q", iv)
	}
	if by != "" && !by.Valid() {
		return nil, InvalidDimension(by)
	}
	if f.Since.IsZero() || f.Until.IsZero() {
		return nil, Invalid("since", "a series needs both since and until")
	}
	var out []TimeBucket
	for t := iv.Truncate(f.Since); t.Before(f.Until); t = iv.Next(t) {
		if len(out) == MaxBuckets {
			return nil, Invalid("since", "the range holds more than %d %s buckets", MaxBuckets, iv)
		}
		b := TimeBucket{Start: t}
		if by != "" {
			b.By = map[string]int64{}
		}
		out = append(out, b)
	}
	return out, nil
}

// TimeBucket is one bucket of a time series: the count of events and the
// sums of their LLM usage (metadata.llm), as a Bucket of an aggregation
// has them. By holds the counts per key of the series' dimension, when one
// was asked for.
type TimeBucket struct {
	Start time.Time `json:"start"`
	Usage
	By map[string]int64 `json:"by,omitempty"`
}

// HeartbeatGap is a window in which an agent that sends heartbeats sent none
// for longer than its interval allows. Open is set when the heartbeats had
// not resumed by the end of the queried range.
type HeartbeatGap struct {
	Org        string    `json:"org"`
	ActorID    string    `json:"actor_id"`
	ProducerID string    `json:"producer_id,omitempty"`
	From       time.Time `json:"from"`   // the last heartbeat before the gap
	To         time.Time `json:"to"`     // the first one after it, or the end of the range when Open
	Missed     int64     `json:"missed"` // whole intervals without a heartbeat
	Open       bool      `json:"open,omitempty"`
}

// SequenceGap is a range of producer_seq values a producer never delivered:
// From and To inclusive.
type SequenceGap struct {
	Org        string `json:"org"`
	ProducerID string `json:"producer_id"`
	From       int64  `json:"from"`
	To         int64  `json:"to"`
}
