// Package storetest is the conformance suite every agenttrail.Store passes.
// A store's tests call Run with a function that opens a fresh, empty store;
// the suite appends generated events and compares what the store returns
// with a reference model in plain Go (Select, Aggregate, Series), which
// applies agenttrail.Filter.Match to the same events.
//
// What the suite pins down beyond the doc comments of agenttrail.Store:
//   - Times round-trip at least to the microsecond (a store may keep
//     nanoseconds; PostgreSQL keeps microseconds, so the suite generates
//     microsecond times and compares at that precision). Metadata round-trips
//     as the same JSON value (key order and whitespace may change). LLM cost
//     sums may differ from the model by float rounding only.
//   - In time sorts, Next is nil exactly when no event follows the page; in
//     seq order it is always set, and on an empty page it is After (or the
//     zero position).
//   - Q folds ASCII case only, and % and _ in it match literally.
//   - A filter over agenttrail.Filter.Check's bounds (values, q's length,
//     NUL in q) is an EINVALID error naming the field on every read
//     (FilterBounds).
//   - Aggregate and Series read one snapshot: a reader concurrent with
//     Append sees whole batches only, never part of one (Concurrent).
//   - HeartbeatGaps: a gap is reported between consecutive heartbeats more
//     than 1.5 intervals apart, From the one before, To the one after; an
//     open gap runs from the last heartbeat to f.Until. Missed counts the
//     intervals in which no heartbeat came: the suite uses exact multiples
//     of the interval, where 4 intervals apart is 3 missed. Producers of
//     one actor are judged apart, each heartbeat by the interval its
//     metadata states, and nothing after a stop is a gap
//     (HeartbeatProducers).
//   - LLM usage sums saturate at math.MaxInt64 instead of overflowing
//     (UsageSaturates); usage within Validate's bounds sums exactly.
//   - A call whose context was cancelled or is past its deadline fails with
//     an EUNAVAILABLE error wrapping context.Canceled or
//     context.DeadlineExceeded, and changes nothing (ContextEnded).
package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call and register its cleanup (closing, removing files) on the t it
// is given.
func Run(t *testing.T, open func(t *testing.T) agenttrail.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, agenttrail.Store)
	}{
		{"Ping", testPing},
		{"Append", testAppend},
		{"AppendDedupWithinBatch", testAppendDedupWithinBatch},
		{"AppendOrgs", testAppendOrgs},
		{"Get", testGet},
		{"RoundTrip", testRoundTrip},
		{"LargeMetadata", testLargeMetadata},
		{"QueryFilters", testQueryFilters},
		{"QueryTimeRange", testQueryTimeRange},
		{"QueryText", testQueryText},
		{"QueryRandom", testQueryRandom},
		{"FilterBounds", testFilterBounds},
		{"Paging", testPaging},
		{"PagingWhileAppending", testPagingWhileAppending},
		{"SeqLateEvent", testSeqLateEvent},
		{"Aggregate", testAggregate},
		{"AggregateEdges", testAggregateEdges},
		{"UsageAtBounds", testUsageAtBounds},
		{"UsageSaturates", testUsageSaturates},
		{"Series", testSeries},
		{"SeriesWeeks", testSeriesWeeks},
		{"HeartbeatGaps", testHeartbeatGaps},
		{"HeartbeatProducers", testHeartbeatProducers},
		{"SequenceGaps", testSequenceGaps},
		{"DeleteBefore", testDeleteBefore},
		{"DeleteByRules", testDeleteByRules},
		{"Concurrent", testConcurrent},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ContextEnded", testContextEnded},
		{"SinkLedger", testSinkLedger},
		{"BudgetCRUD", testBudgetCRUD},
		{"BudgetPeriods", testBudgetPeriods},
		{"BudgetReserve", testBudgetReserve},
		{"BudgetConcurrent", testBudgetConcurrent},
		{"BudgetAllowance", testBudgetAllowance},
		{"Tree", testTree},
		{"Checkpoints", testCheckpoints},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// as returns s as the interface T every store implements beside
// agenttrail.Store (agenttrail.Budgets, integrity.Log, ...), and fails the
// test when it does not.
func as[T any](t *testing.T, s agenttrail.Store) T {
	t.Helper()
	v, ok := s.(T)
	if !ok {
		t.Fatalf("%T does not implement %v", s, reflect.TypeFor[T]())
	}
	return v
}

// Base is the start of the generated data of most tests: a Wednesday, not
// aligned to an hour, so day and week buckets start before it.
func Base() time.Time { return time.Date(2025, 3, 5, 7, 23, 11, 0, time.UTC) }

// AppendAll appends events in batches of batch and returns a copy of events
// with the Seq each got. It fails t unless every event is new.
func AppendAll(t testing.TB, s agenttrail.Store, events []agenttrail.Event, batch int) []agenttrail.Event {
	t.Helper()
	out := append([]agenttrail.Event(nil), events...)
	for i := 0; i < len(out); i += batch {
		j := min(i+batch, len(out))
		res, err := s.Append(t.Context(), out[i:j])
		if err != nil {
			t.Fatalf("Append(%d events) error: %v", j-i, err)
		}
		if res.Inserted != j-i || res.Duplicates != 0 {
			t.Fatalf("Append(%d new events) = %+v, want %d inserted, 0 duplicates", j-i, res, j-i)
		}
	}
	return out
}

// all returns every stored event in seq order, paging with the largest
// limit the suite uses.
func all(t *testing.T, s agenttrail.Store, f agenttrail.Filter) []agenttrail.Event {
	t.Helper()
	return collect(t, s, agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq, Limit: 1000})
}

// collect follows a query's pages to the end and returns every event.
func collect(t *testing.T, s agenttrail.Store, q agenttrail.Query) []agenttrail.Event {
	t.Helper()
	var out []agenttrail.Event
	for range 100000 {
		p, err := s.Query(t.Context(), q)
		if err != nil {
			t.Fatalf("Query(%s, sort %s) error: %v", filterString(q.Filter), q.Sort, err)
		}
		if len(p.Events) > q.Limit {
			t.Fatalf("Query(limit %d) = %d events", q.Limit, len(p.Events))
		}
		out = append(out, p.Events...)
		if len(p.Events) == 0 || p.Next == nil {
			return out
		}
		q.After = p.Next
	}
	t.Fatalf("Query(%s) did not end", filterString(q.Filter))
	return nil
}

func testPing(t *testing.T, s agenttrail.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() = %v, want nil", err)
	}
}
