package server

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/agenttrail/agenttrail/wire"
)

// dataset posts n generated events spread over three days before testNow
// and returns them as sent.
func dataset(t *testing.T, e *env, seed int64, n int) []agenttrail.Event {
	t.Helper()
	events := storetest.Events(seed, n, testNow.Add(-72*time.Hour), 71*time.Hour)
	for i := 0; i < len(events); i += 500 {
		e.ingest(t, events[i:min(i+500, len(events))])
	}
	return events
}

func ids(events []agenttrail.Event) []string {
	out := make([]string, len(events))
	for i := range events {
		out[i] = events[i].Org + "/" + events[i].ID
	}
	return out
}

// checkOrder fails unless events are in sort order s.
func checkOrder(t *testing.T, s string, events []agenttrail.Event) {
	t.Helper()
	for i := 1; i < len(events); i++ {
		a, b := events[i-1], events[i]
		var ok bool
		switch s {
		case "seq":
			ok = a.Seq < b.Seq
		case "time":
			ok = a.Time.Before(b.Time) || a.Time.Equal(b.Time) && a.Seq < b.Seq
		default:
			ok = a.Time.After(b.Time) || a.Time.Equal(b.Time) && a.Seq > b.Seq
		}
		if !ok {
			t.Fatalf("sort=%s: event %d (time %v, seq %d) before event %d (time %v, seq %d)", s, i-1, a.Time, a.Seq, i, b.Time, b.Seq)
		}
	}
}

func TestPagination(t *testing.T) { forEachStore(t, testPagination) }

func testPagination(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	events := dataset(t, e, 1, 1000)
	want := ids(events)
	slices.Sort(want)
	for _, s := range []string{"-time", "time", "seq"} {
		t.Run(s, func(t *testing.T) {
			got := e.pageAll(t, "/v1/events?limit=200&sort="+url.QueryEscape(s), nil)
			checkOrder(t, s, got)
			gotIDs := ids(got)
			slices.Sort(gotIDs)
			if !slices.Equal(gotIDs, want) {
				t.Errorf("paging sort=%s in pages of 200 saw %d events (%d distinct), want the 1000 posted", s, len(gotIDs), len(slices.Compact(gotIDs)))
			}
		})
	}
}

func TestPaginationWhileIngesting(t *testing.T) { forEachStore(t, testPaginationWhileIngesting) }

func testPaginationWhileIngesting(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	events := dataset(t, e, 2, 1000)
	for k, s := range []string{"-time", "time", "seq"} {
		t.Run(s, func(t *testing.T) {
			posted := 0
			more := func() {
				if posted >= 300 {
					return // let the seq feed, which never ends, catch up
				}
				// New events land anywhere in time: before and after the cursor.
				batch := storetest.Events(int64(1000*(k+1)+posted), 50, testNow.Add(-72*time.Hour), 71*time.Hour)
				e.ingest(t, batch)
				posted += len(batch)
			}
			got := e.pageAll(t, "/v1/events?limit=200&sort="+s, more)
			checkOrder(t, s, got)
			seen := map[string]int{}
			for _, id := range ids(got) {
				seen[id]++
			}
			for id, n := range seen {
				if n > 1 {
					t.Errorf("sort=%s: event %s seen %d times", s, id, n)
				}
			}
			for _, id := range ids(events) {
				if seen[id] != 1 {
					t.Errorf("sort=%s: event %s, stored before paging began, seen %d times, want 1", s, id, seen[id])
				}
			}
			if s == "seq" && len(got) < 1000+posted {
				t.Errorf("sort=seq saw %d events, want all %d: new events commit after the cursor", len(got), 1000+posted)
			}
		})
	}
}

func TestCursorErrors(t *testing.T) { forEachStore(t, testCursorErrors) }

func testCursorErrors(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	dataset(t, e, 3, 120)
	var page wire.Page
	e.getJSON(t, "/v1/events?limit=10&source=shell&source=llm-proxy", &page)
	if page.NextCursor == "" {
		t.Fatal("first page of 10 has no next_cursor")
	}
	c := page.NextCursor
	// The same filters in another order and spelling are the same query.
	var next wire.Page
	e.getJSON(t, "/v1/events?source=llm-proxy&limit=10&source=shell&cursor="+c, &next)
	if len(next.Events) == 0 {
		t.Errorf("second page is empty")
	}
	// Tampering the cursor can at most move its position (the filters and
	// the caller's scope are applied again on every page); what the format
	// can tell must be refused.
	edit := func(i int, to func(byte) byte) string {
		b := []byte(c)
		b[i] = to(b[i])
		return url.QueryEscape(string(b))
	}
	next64 := func(ch byte) byte { // the next character of the URL-safe base64 alphabet
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		return alphabet[(strings.IndexByte(alphabet, ch)+1)%64]
	}
	tests := []struct {
		name, query string
	}{
		{"other filters", "source=shell&cursor=" + c},
		{"another sort", "source=shell&source=llm-proxy&sort=time&cursor=" + c},
		{"an added filter", "source=shell&source=llm-proxy&result=failure&cursor=" + c},
		{"its filter key edited", "source=shell&source=llm-proxy&cursor=" + edit(len(c)-6, next64)},
		{"its version edited", "source=shell&source=llm-proxy&cursor=" + edit(0, next64)},
		{"its last character edited", "source=shell&source=llm-proxy&cursor=" + edit(len(c)-1, next64)},
		{"a character appended", "source=shell&source=llm-proxy&cursor=" + c + "A"},
		{"a newline inserted", "source=shell&source=llm-proxy&cursor=" + url.QueryEscape(c[:10]+"\n"+c[10:])},
		{"truncated", "source=shell&source=llm-proxy&cursor=" + c[:len(c)-3]},
		{"garbage", "source=shell&source=llm-proxy&cursor=not-a-cursor!"},
		{"empty", "source=shell&source=llm-proxy&cursor="},
	}
	for _, tc := range tests {
		path := "/v1/events?limit=10&" + tc.query
		p := problemFrom(t, "GET "+path, e.get(t, path), http.StatusBadRequest)
		if p.Field != "cursor" || !strings.HasPrefix(p.Detail, "cursor: ") {
			t.Errorf("GET with a cursor of %s: problem %+v, want it to name the cursor", tc.name, p)
		}
	}
}

func TestFilters(t *testing.T) { forEachStore(t, testFilters) }

func testFilters(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	events := dataset(t, e, 4, 600)
	since := testNow.Add(-48 * time.Hour).Truncate(time.Second)
	tests := []struct {
		query string
		match func(ev *agenttrail.Event) bool
	}{
		{"source=shell&source=mcp-tool", func(ev *agenttrail.Event) bool {
			return ev.Source == "shell" || ev.Source == "mcp-tool"
		}},
		{"source=shell&result=failure", func(ev *agenttrail.Event) bool {
			return ev.Source == "shell" && ev.Result == "failure"
		}},
		{"org=acme&actor_type=user&actor_type=system", func(ev *agenttrail.Event) bool {
			return ev.Org == "acme" && (ev.ActorType == "user" || ev.ActorType == "system")
		}},
		{"status_code=403&status_code=500&org=globex", func(ev *agenttrail.Event) bool {
			return (ev.StatusCode == 403 || ev.StatusCode == 500) && ev.Org == "globex"
		}},
		{"q=GITHUB", func(ev *agenttrail.Event) bool {
			return strings.Contains(strings.ToLower(ev.Action+"\x00"+ev.Description+"\x00"+ev.ResourceID+"\x00"+ev.ActorName), "github")
		}},
		{"since=" + since.Format(time.RFC3339) + "&project=web&project=", nil}, // an empty value is an error
		{"since=" + since.Format(time.RFC3339) + "&project=web", func(ev *agenttrail.Event) bool {
			return !ev.Time.Before(since) && ev.Project == "web"
		}},
		{"since=24h&until=1h", func(ev *agenttrail.Event) bool {
			return !ev.Time.Before(testNow.Add(-24*time.Hour)) && ev.Time.Before(testNow.Add(-time.Hour))
		}},
		{"actor_id=agent-03&actor_id=agent-04&source=llm-proxy&resource_type=model", func(ev *agenttrail.Event) bool {
			return (ev.ActorID == "agent-03" || ev.ActorID == "agent-04") && ev.Source == "llm-proxy" && ev.ResourceType == "model"
		}},
	}
	for _, tc := range tests {
		path := "/v1/events?limit=200&" + tc.query
		if tc.match == nil {
			problemFrom(t, "GET "+path, e.get(t, path), http.StatusBadRequest)
			continue
		}
		var want []string
		for i := range events {
			if tc.match(&events[i]) {
				want = append(want, events[i].Org+"/"+events[i].ID)
			}
		}
		got := ids(e.pageAll(t, path, nil))
		sort.Strings(want)
		sort.Strings(got)
		if len(want) == 0 {
			t.Errorf("GET %s: the test data has no match; the case checks nothing", path)
		}
		if !slices.Equal(got, want) {
			t.Errorf("GET %s = %d events, want %d", path, len(got), len(want))
		}
	}
}

func TestSeqPicksUpLateEvent(t *testing.T) { forEachStore(t, testSeqPicksUpLateEvent) }

func testSeqPicksUpLateEvent(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	dataset(t, e, 5, 300)
	// Follow the feed to its end, as a SIEM poller does.
	var cursor string
	var seen int
	for i := 0; ; i++ {
		path := "/v1/events?sort=seq&limit=200"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page wire.Page
		e.getJSON(t, path, &page)
		if page.NextCursor == "" {
			t.Fatalf("GET %s: next_cursor is null; in seq order it is always set", path)
		}
		cursor = page.NextCursor
		seen += len(page.Events)
		if len(page.Events) == 0 || i > 10 {
			break
		}
	}
	if seen != 300 {
		t.Fatalf("seq feed delivered %d events, want 300", seen)
	}
	late := strings.Replace(validEvent("late-1"), "2025-03-12T11:00:00.123Z", "2025-02-01T00:00:00Z", 1)
	decodeIngest(t, "POST late event", e.post(t, "application/json", []byte(late)))
	var page wire.Page
	e.getJSON(t, "/v1/events?sort=seq&limit=200&cursor="+cursor, &page)
	if len(page.Events) != 1 || page.Events[0].ID != "late-1" {
		t.Errorf("seq feed after a late event with an old time = %v, want exactly late-1", ids(page.Events))
	}
}

func TestQueryParamErrors(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	tests := []struct {
		path, field string
	}{
		{"/v1/events?actorid=a", "actorid"},
		{"/v1/events?limit=0", "limit"},
		{"/v1/events?limit=201", "limit"},
		{"/v1/events?limit=ten", "limit"},
		{"/v1/events?sort=newest", "sort"},
		{"/v1/events?since=yesterday", "since"},
		{"/v1/events?result=ok", "result"},
		{"/v1/events?status_code=99", "status_code"},
		{"/v1/events/some-id?source=shell", "source"},
		{"/v1/aggregate", "by"},
		{"/v1/aggregate?by=color", "by"},
		{"/v1/aggregate?by=source&limit=5", "limit"},
		{"/v1/timeseries", "interval"},
		{"/v1/timeseries?interval=minute", "interval"},
		{"/v1/timeseries?interval=hour&since=3000d", "since"},
		{"/v1/timeseries?interval=day&by=nope", "by"},
	}
	for _, tc := range tests {
		p := problemFrom(t, "GET "+tc.path, e.get(t, tc.path), http.StatusBadRequest)
		if p.Field != tc.field || !strings.HasPrefix(p.Detail, tc.field+": ") || p.Code != agenttrail.EINVALID {
			t.Errorf("GET %s problem = %+v, want code invalid naming %q", tc.path, p, tc.field)
		}
	}
	var page wire.Page
	for _, limit := range []int{1, 200} {
		e.getJSON(t, fmt.Sprintf("/v1/events?limit=%d", limit), &page)
	}
}

func TestGetEvent(t *testing.T) { forEachStore(t, testGetEvent) }

func testGetEvent(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	events := dataset(t, e, 6, 20)
	want := events[7]
	var got agenttrail.Event
	e.getJSON(t, "/v1/events/"+url.PathEscape(want.ID), &got)
	if got.Seq == 0 {
		t.Errorf("GET /v1/events/%s: seq is 0", want.ID)
	}
	want.Seq, want.ReceivedAt = got.Seq, testNow // the server's to set
	if d := storetest.DiffEvent(&got, &want); d != "" {
		t.Errorf("GET /v1/events/%s: %s (seq %d)", want.ID, d, got.Seq)
	}
	e.getJSON(t, "/v1/events/"+url.PathEscape(want.ID)+"?org="+want.Org, &got)
	if got.ID != want.ID {
		t.Errorf("GET with its org = %s, want %s", got.ID, want.ID)
	}
	other := "acme"
	if want.Org == other {
		other = "globex"
	}
	for _, path := range []string{"/v1/events/no-such-id", "/v1/events/" + want.ID + "?org=" + other} {
		p := problemFrom(t, "GET "+path, e.get(t, path), http.StatusNotFound)
		if p.Code != agenttrail.ENOTFOUND {
			t.Errorf("GET %s code %q, want not_found", path, p.Code)
		}
	}
}
