package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// heartbeats returns one heartbeat of actor every iv from start, n of them,
// except those skip reports; intervalMS goes in metadata when positive.
func heartbeats(org, actor string, start time.Time, iv time.Duration, n int, intervalMS int64, skip func(int) bool) []agenttrail.Event {
	var out []agenttrail.Event
	for i := 0; i < n; i++ {
		if skip != nil && skip(i) {
			continue
		}
		e := agenttrail.Event{
			Time: start.Add(time.Duration(i) * iv), ActorType: agenttrail.ActorAgent, ActorID: actor,
			Source: agenttrail.SourceAgent, Action: agenttrail.ActionHeartbeat, Result: agenttrail.ResultSuccess,
			Org: org, ProducerID: "p-" + actor, ProducerSeq: int64(i + 1),
		}
		if intervalMS > 0 {
			e.Metadata = json.RawMessage(fmt.Sprintf(`{"interval_ms":%d}`, intervalMS))
		}
		out = append(out, e)
	}
	return out
}

func TestGaps(t *testing.T) { forEachStore(t, testGaps) }

func testGaps(t *testing.T, o options) {
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	o.now, o.auth = now, tokens{
		"admin": {Name: "admin", Role: RoleAdmin, Org: AllOrgs},
		"acme":  {Name: "acme-reader", Role: RoleRead, Org: "acme"},
	}
	e := newEnv(t, o)
	start := now.Add(-10 * time.Minute)
	var evs []agenttrail.Event
	// fast heartbeats every second, stating so; 3 missing from the 100th.
	evs = append(evs, heartbeats("acme", "fast", start, time.Second, 600, 1000, func(i int) bool { return i >= 100 && i < 103 })...)
	// slow heartbeats every 30 s stating nothing: judged by the default;
	// the 5th missing. Its producer_seq skips 5 as well.
	evs = append(evs, heartbeats("acme", "slow", start, 30*time.Second, 20, 0, func(i int) bool { return i == 5 })...)
	// another org's agent with a hole in its sequence.
	evs = append(evs, heartbeats("globex", "other", start, 30*time.Second, 20, 30000, func(i int) bool { return i >= 7 && i <= 9 })...)
	header := http.Header{"Authorization": {"Bearer admin"}, "Content-Type": {"application/x-ndjson"}}
	if r := e.do(t, http.MethodPost, "/v1/events", header, ndjson(t, evs)); r.status != http.StatusOK {
		t.Fatalf("POST /v1/events = %d: %s", r.status, r.body)
	}

	get := func(token, query string) wire.Gaps {
		t.Helper()
		r := e.do(t, http.MethodGet, "/v1/gaps?"+query, http.Header{"Authorization": {"Bearer " + token}}, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/gaps?%s = %d: %s", query, r.status, r.body)
		}
		var g wire.Gaps
		if err := json.Unmarshal(r.body, &g); err != nil {
			t.Fatal(err)
		}
		sort.Slice(g.Heartbeats, func(i, j int) bool { return g.Heartbeats[i].ActorID < g.Heartbeats[j].ActorID })
		sort.Slice(g.Sequences, func(i, j int) bool { return g.Sequences[i].ProducerID < g.Sequences[j].ProducerID })
		return g
	}
	at := func(iv time.Duration, i int) time.Time { return start.Add(time.Duration(i) * iv) }
	fast := agenttrail.HeartbeatGap{Org: "acme", ActorID: "fast", ProducerID: "p-fast", From: at(time.Second, 99), To: at(time.Second, 103), Missed: 3}
	slow := agenttrail.HeartbeatGap{Org: "acme", ActorID: "slow", ProducerID: "p-slow", From: at(30*time.Second, 4), To: at(30*time.Second, 6), Missed: 1}
	other := agenttrail.HeartbeatGap{Org: "globex", ActorID: "other", ProducerID: "p-other", From: at(30*time.Second, 6), To: at(30*time.Second, 10), Missed: 3}
	seqFast := agenttrail.SequenceGap{Org: "acme", ProducerID: "p-fast", From: 101, To: 103}
	seqSlow := agenttrail.SequenceGap{Org: "acme", ProducerID: "p-slow", From: 6, To: 6}
	seqOther := agenttrail.SequenceGap{Org: "globex", ProducerID: "p-other", From: 8, To: 10}

	tests := []struct {
		token, query string
		heartbeats   []agenttrail.HeartbeatGap
		sequences    []agenttrail.SequenceGap
	}{
		// Each agent by its own interval; since defaults to 24 h ago.
		{"admin", "", []agenttrail.HeartbeatGap{fast, other, slow}, []agenttrail.SequenceGap{seqFast, seqOther, seqSlow}},
		{"admin", "actor_id=fast", []agenttrail.HeartbeatGap{fast}, []agenttrail.SequenceGap{seqFast}},
		{"admin", "producer_id=p-slow&since=15m", []agenttrail.HeartbeatGap{slow}, []agenttrail.SequenceGap{seqSlow}},
		// One interval for everyone: the fast agent's 3 s gap is within
		// 1.5 × 30 s.
		{"admin", "org=acme&interval=30s", []agenttrail.HeartbeatGap{slow}, []agenttrail.SequenceGap{seqFast, seqSlow}},
		// A scoped token sees its org only, whatever it asks for.
		{"acme", "", []agenttrail.HeartbeatGap{fast, slow}, []agenttrail.SequenceGap{seqFast, seqSlow}},
		{"acme", "org=globex", nil, nil},
		// A range that ends before the gaps.
		{"admin", "since=" + url.QueryEscape(start.Format(time.RFC3339)) + "&until=" + url.QueryEscape(at(time.Second, 50).Format(time.RFC3339)), nil, nil},
	}
	for _, tc := range tests {
		g := get(tc.token, tc.query)
		if !gapsEqual(g.Heartbeats, tc.heartbeats) {
			t.Errorf("GET /v1/gaps?%s as %s: heartbeats = %+v, want %+v", tc.query, tc.token, g.Heartbeats, tc.heartbeats)
		}
		if !slices.Equal(g.Sequences, tc.sequences) && !(len(g.Sequences) == 0 && len(tc.sequences) == 0) {
			t.Errorf("GET /v1/gaps?%s as %s: sequences = %+v, want %+v", tc.query, tc.token, g.Sequences, tc.sequences)
		}
		if g.Heartbeats == nil || g.Sequences == nil {
			t.Errorf("GET /v1/gaps?%s: a list is null", tc.query)
		}
	}
	if g := get("admin", ""); !g.Until.Equal(now) || !g.Since.Equal(now.Add(-24*time.Hour)) {
		t.Errorf("default range = [%v, %v), want [%v, %v)", g.Since, g.Until, now.Add(-24*time.Hour), now)
	}

	for _, bad := range []struct{ query, field string }{
		{"interval=soon", "interval"},
		{"interval=30s&interval=1m", "interval"},
		{"intervall=30s", "intervall"},
		{"since=1h&until=2h", "since"},
		{"actor_type=robot", "actor_type"},
	} {
		r := e.do(t, http.MethodGet, "/v1/gaps?"+bad.query, http.Header{"Authorization": {"Bearer admin"}}, nil)
		if p := problemFrom(t, "GET /v1/gaps?"+bad.query, r, http.StatusBadRequest); p.Field != bad.field {
			t.Errorf("GET /v1/gaps?%s: field = %q, want %q", bad.query, p.Field, bad.field)
		}
	}
	if r := e.do(t, http.MethodGet, "/v1/gaps", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/gaps without a token = %d, want 401", r.status)
	}
}

func gapsEqual(got, want []agenttrail.HeartbeatGap) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Org != w.Org || g.ActorID != w.ActorID || !g.From.Equal(w.From) || !g.To.Equal(w.To) || g.Missed != w.Missed || g.Open != w.Open {
			return false
		}
	}
	return true
}

// TestGapsSchemas checks the documented gap schemas against the types the
// server encodes.
func TestGapsSchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, v := range map[string]any{
		"GapsResponse": wire.Gaps{},
		"HeartbeatGap": agenttrail.HeartbeatGap{},
		"SequenceGap":  agenttrail.SequenceGap{},
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is not documented", name)
			continue
		}
		var want, got []string
		rt := reflect.TypeOf(v)
		for i := 0; i < rt.NumField(); i++ {
			tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if tag != "" && tag != "-" {
				want = append(want, tag)
			}
		}
		for p := range schema.Properties {
			got = append(got, p)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v, the type encodes %v", name, got, want)
		}
	}
}
