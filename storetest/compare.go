package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// DiffEvent describes how got differs from want, or returns "" when they
// are the same event. Times compare at microsecond precision (PostgreSQL
// keeps microseconds; a store may keep more, never less) and metadata
// compares as JSON values, so key order and whitespace do not matter.
func DiffEvent(got, want *agenttrail.Event) string {
	var d []string
	check := func(field string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			d = append(d, fmt.Sprintf("%s = %#v, want %#v", field, g, w))
		}
	}
	check("id", got.ID, want.ID)
	check("time", micro(got.Time), micro(want.Time))
	check("duration_ms", got.DurationMS, want.DurationMS)
	check("actor_type", got.ActorType, want.ActorType)
	check("actor_id", got.ActorID, want.ActorID)
	check("actor_name", got.ActorName, want.ActorName)
	check("source", got.Source, want.Source)
	check("action", got.Action, want.Action)
	check("resource_type", got.ResourceType, want.ResourceType)
	check("resource_id", got.ResourceID, want.ResourceID)
	check("result", got.Result, want.Result)
	check("status_code", got.StatusCode, want.StatusCode)
	check("description", got.Description, want.Description)
	check("org", got.Org, want.Org)
	check("project", got.Project, want.Project)
	check("producer_id", got.ProducerID, want.ProducerID)
	check("producer_seq", got.ProducerSeq, want.ProducerSeq)
	check("trace_id", got.TraceID, want.TraceID)
	check("span_id", got.SpanID, want.SpanID)
	check("parent_span_id", got.ParentSpanID, want.ParentSpanID)
	check("session_id", got.SessionID, want.SessionID)
	check("seq", got.Seq, want.Seq)
	check("received_at", micro(got.ReceivedAt), micro(want.ReceivedAt))
	if got.Time.Location() != time.UTC {
		d = append(d, fmt.Sprintf("time location = %v, want UTC", got.Time.Location()))
	}
	if !sameJSON(got.Metadata, want.Metadata) {
		d = append(d, fmt.Sprintf("metadata = %.200s, want %.200s", got.Metadata, want.Metadata))
	}
	return strings.Join(d, "; ")
}

// micro returns t in UTC truncated to the microsecond, as a comparable
// string (time.Time values with equal instants may not be DeepEqual).
func micro(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}

// sameJSON reports whether a and b encode the same JSON value; an absent
// value equals null.
func sameJSON(a, b []byte) bool {
	va, erra := decodeJSON(a)
	vb, errb := decodeJSON(b)
	return erra == nil && errb == nil && reflect.DeepEqual(va, vb)
}

func decodeJSON(b []byte) (any, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return normalizeNumbers(v), err
}

// normalizeNumbers turns json.Numbers into float64 when that is exact, so
// "1.50" and "1.5" compare equal but large integers keep every digit.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	case json.Number:
		if f, err := x.Float64(); err == nil && math.Abs(f) < 1<<53 {
			return f
		}
		return string(x)
	}
	return v
}

// closeEnough compares sums of float costs, which stores add in another
// order than the model does.
func closeEnough(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6+1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// sameBucket reports whether two aggregation buckets agree: counters
// exactly, cost up to float rounding.
func sameBucket(a, b agenttrail.Bucket) bool {
	c := a
	c.CostUSD = b.CostUSD
	return c == b && closeEnough(a.CostUSD, b.CostUSD)
}

// checkBuckets fails t when got is not want (as Aggregate returns them).
func checkBuckets(t *testing.T, call string, got, want []agenttrail.Bucket) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %d buckets, want %d\n got: %v\nwant: %v", call, len(got), len(want), got, want)
		return
	}
	for i := range got {
		if !sameBucket(got[i], want[i]) {
			t.Errorf("%s bucket %d = %+v, want %+v", call, i, got[i], want[i])
			return
		}
	}
}

// checkSeries fails t when got is not want (as Series returns them). A nil
// and an empty By map are the same.
func checkSeries(t *testing.T, call string, got, want []agenttrail.TimeBucket) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %d buckets, want %d", call, len(got), len(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		gt := [5]int64{g.InputTokens, g.OutputTokens, g.CacheReadTokens, g.CacheWriteTokens, g.ReasoningTokens}
		wt := [5]int64{w.InputTokens, w.OutputTokens, w.CacheReadTokens, w.CacheWriteTokens, w.ReasoningTokens}
		if !g.Start.Equal(w.Start) || g.Count != w.Count || gt != wt || !closeEnough(g.CostUSD, w.CostUSD) || !sameCounts(g.By, w.By) {
			t.Errorf("%s bucket %d = {%v %d %v %g %v}, want {%v %d %v %g %v}", call, i,
				g.Start, g.Count, gt, g.CostUSD, g.By, w.Start, w.Count, wt, w.CostUSD, w.By)
			return
		}
		if g.Start.Location() != time.UTC {
			t.Errorf("%s bucket %d start %v is not in UTC", call, i, g.Start)
			return
		}
	}
}

func sameCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// seqs lists the Seq of each event, the compact form pages compare in.
func seqs(events []agenttrail.Event) []int64 {
	out := make([]int64, len(events))
	for i := range events {
		out[i] = events[i].Seq
	}
	return out
}

// checkSeqs fails t when got does not list the events of want in order.
func checkSeqs(t *testing.T, call string, got, want []agenttrail.Event) {
	t.Helper()
	g, w := seqs(got), seqs(want)
	if len(g) != len(w) {
		t.Errorf("%s = %d events, want %d", call, len(g), len(w))
		return
	}
	for i := range g {
		if g[i] != w[i] {
			t.Errorf("%s event %d has seq %d, want %d (got %v..., want %v...)", call, i, g[i], w[i], head(g, i), head(w, i))
			return
		}
	}
}

func head(s []int64, i int) []int64 {
	lo, hi := max(0, i-3), min(len(s), i+4)
	return s[lo:hi]
}

// filterString prints a filter compactly for failure messages: as the
// query parameters of the HTTP API.
func filterString(f agenttrail.Filter) string {
	return wire.EncodeFilter(f).Encode()
}
