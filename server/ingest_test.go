package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

var testNow = time.Date(2025, 3, 12, 12, 0, 0, 0, time.UTC)

// validEvent returns a minimal valid event as JSON, with id when it is
// not "".
func validEvent(id string) string {
	idField := ""
	if id != "" {
		idField = fmt.Sprintf(`"id":%q,`, id)
	}
	return `{` + idField + `"time":"2025-03-12T11:00:00.123Z","actor_type":"agent","actor_id":"agent-1","source":"shell","action":"shell_exec","result":"success"}`
}

func decodeIngest(t *testing.T, what string, r response) wire.IngestResult {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s = %d, want 200: %s", what, r.status, r.body)
	}
	var got wire.IngestResult
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%s: decoding %s: %v", what, r.body, err)
	}
	if bytes.Contains(r.body, []byte(`"rejected":null`)) {
		t.Errorf("%s: rejected is null, want []", what)
	}
	return got
}

func TestIngestShapes(t *testing.T) { forEachStore(t, testIngestShapes) }

func testIngestShapes(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	tests := []struct {
		name        string
		contentType string
		body        string
		accepted    int
	}{
		{"one object", "application/json", validEvent("obj-1"), 1},
		{"object with surrounding space", "", "\n  " + validEvent("obj-2") + "\n\n", 1},
		{"array", "application/json", "[" + validEvent("arr-1") + ",\n " + validEvent("arr-2") + "]", 2},
		{"empty array", "application/json", "[]", 0},
		{"ndjson", "application/x-ndjson", validEvent("nd-1") + "\n" + validEvent("nd-2") + "\n" + validEvent("nd-3") + "\n", 3},
		{"ndjson by content, CRLF, blank lines", "application/json", validEvent("nd-4") + "\r\n\r\n" + validEvent("nd-5"), 2},
		{"curl's form type", "application/x-www-form-urlencoded", validEvent("form-1"), 1},
		{"no ids", "application/x-ndjson", validEvent("") + "\n" + validEvent(""), 2},
	}
	total := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeIngest(t, "POST "+tc.name, e.post(t, tc.contentType, []byte(tc.body)))
			want := wire.IngestResult{Accepted: tc.accepted, Rejected: []wire.Rejection{}}
			if got.Accepted != want.Accepted || got.Duplicates != 0 || len(got.Rejected) != 0 {
				t.Errorf("POST %s = %+v, want %+v", tc.name, got, want)
			}
		})
		total += tc.accepted
	}
	stored := e.pageAll(t, "/v1/events?limit=200", nil)
	if len(stored) != total {
		t.Errorf("GET /v1/events holds %d events, want %d", len(stored), total)
	}
	for _, ev := range stored {
		if ev.Seq == 0 || ev.ID == "" || ev.Org != agenttrail.DefaultOrg || !ev.ReceivedAt.Equal(testNow) {
			t.Errorf("stored event %+v: want seq, id, org %q and received_at %v set by the server", ev, agenttrail.DefaultOrg, testNow)
		}
	}
}

func TestIngestRejectsByIndex(t *testing.T) { forEachStore(t, testIngestRejectsByIndex) }

func testIngestRejectsByIndex(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	lines := []struct {
		json  string
		field string // "" when the line is valid
	}{
		{validEvent("good-0"), ""},
		{`{"id":"bad-1","time":"2025-03-12T11:00:00Z","actor_type":"agent","actor_id":5,"source":"shell","action":"x","result":"success"}`, "actor_id"},
		{strings.Replace(validEvent("bad-2"), `"result":"success"`, `"result":"maybe"`, 1), "result"},
		{strings.Replace(validEvent("bad-3"), `"actor_type":"agent",`, ``, 1), "actor_type"},
		{validEvent("good-4"), ""},
		{strings.Replace(validEvent("bad-5"), `"time":"2025-03-12T11:00:00.123Z"`, `"time":"yesterday"`, 1), "time"},
		{strings.Replace(validEvent("bad-6"), `"source":"shell"`, `"source":"shell","actor":"typo"`, 1), "actor"},
		{`{"id": "bad-7", "actor_type": `, "event"},
		{`42`, "event"},
		{strings.Replace(validEvent("bad-9"), `}`, `,"metadata":{"llm":{"model":"m","input_tokens":-1}}}`, 1), "metadata.llm.input_tokens"},
		{strings.Replace(validEvent("bad-10"), `"source":"shell"`, `"source":"Shell Tool"`, 1), "source"},
		{strings.Replace(validEvent("bad-11"), `}`, `,"status_code":1.5}`, 1), "status_code"},
		{strings.Replace(validEvent("bad-12"), `}`, `,"metadata":[1,2]}`, 1), "metadata"},
		{strings.Replace(validEvent("bad-13"), `"time":"2025-03-12T11:00:00.123Z"`, `"time":"2025-03-20T11:00:00Z"`, 1), "time"},
		{validEvent("good-14"), ""},
	}
	var body strings.Builder
	var wantRejected []int
	for i, l := range lines {
		body.WriteString(l.json + "\n")
		if l.field != "" {
			wantRejected = append(wantRejected, i)
		}
	}
	got := decodeIngest(t, "POST mixed NDJSON", e.post(t, "application/x-ndjson", []byte(body.String())))
	if got.Accepted != 3 || got.Duplicates != 0 {
		t.Errorf("POST mixed NDJSON = %d accepted, %d duplicates; want 3, 0", got.Accepted, got.Duplicates)
	}
	if len(got.Rejected) != len(wantRejected) {
		t.Fatalf("POST mixed NDJSON rejected %+v, want indexes %v", got.Rejected, wantRejected)
	}
	for k, rej := range got.Rejected {
		i := wantRejected[k]
		if rej.Index != i {
			t.Errorf("rejected[%d].index = %d, want %d", k, rej.Index, i)
			continue
		}
		if want := lines[i].field + ": "; !strings.HasPrefix(rej.Error, want) {
			t.Errorf("rejected[%d] (line %s) error = %q, want it to start with %q", k, lines[i].json, rej.Error, want)
		}
	}
	stored := e.pageAll(t, "/v1/events?sort=seq&limit=200", nil)
	var ids []string
	for _, ev := range stored {
		ids = append(ids, ev.ID)
	}
	if want := "good-0,good-4,good-14"; strings.Join(ids, ",") != want {
		t.Errorf("stored ids %v, want %s", ids, want)
	}
}

func TestIngestArrayKeepsGoodEvents(t *testing.T) { forEachStore(t, testIngestArrayKeepsGoodEvents) }

func testIngestArrayKeepsGoodEvents(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	body := "[" + validEvent("a-0") + `, {"id":"a-1","actor_type":"robot","actor_id":"x","source":"shell","action":"x","result":"success"}, "text", ` + validEvent("a-3") + "]"
	got := decodeIngest(t, "POST array", e.post(t, "application/json", []byte(body)))
	want := []wire.Rejection{{Index: 1, Error: `actor_type: must be user, agent or system, not "robot"`}, {Index: 2, Error: "event: must be a JSON object"}}
	if got.Accepted != 2 || fmt.Sprint(got.Rejected) != fmt.Sprint(want) {
		t.Errorf("POST array = %+v, want 2 accepted and rejected %v", got, want)
	}
}

// TestIngestCannotForgeAudit posts, as an admin of every org, an event
// claiming to be the trail's own record of itself, between a malformed one
// and a good one: it is rejected by index, the good one is stored, and the
// rejections stay in request order.
func TestIngestCannotForgeAudit(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	forged := `{"actor_type":"system","actor_id":"agenttrail-server","source":"audit","action":"token.revoke","result":"success"}`
	body := "[" + `"text", ` + forged + ", " + validEvent("good") + "]"
	got := decodeIngest(t, "POST forged audit", e.post(t, "application/json", []byte(body)))
	want := []wire.Rejection{{Index: 0, Error: "event: must be a JSON object"}, {Index: 1, Error: `source: "audit" is reserved for the trail's own events`}}
	if got.Accepted != 1 || fmt.Sprint(got.Rejected) != fmt.Sprint(want) {
		t.Errorf("POST forged audit = %+v, want 1 accepted and rejected %v", got, want)
	}
	page, err := e.store.Query(t.Context(), agenttrail.Query{Filter: agenttrail.Filter{Source: []string{agenttrail.SourceAudit}}, Sort: agenttrail.SortSeq, Limit: 10})
	if err != nil || len(page.Events) != 0 {
		t.Errorf("audit events stored: %+v, %v; want none", page.Events, err)
	}
}

func TestIngestUnparsable(t *testing.T) { forEachStore(t, testIngestUnparsable) }

func testIngestUnparsable(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"spaces", "  \n "},
		{"not JSON", "hello"},
		{"broken array", "[" + validEvent("x") + ", {\"id\": }]"},
		{"unterminated array", "[" + validEvent("x")},
		{"data after array", "[" + validEvent("x") + "] {}"},
		{"a string", `"event"`},
		{"not JSON after a brace", "{not json"},
		{"a pretty-printed object with a syntax error", "{\n  \"id\": x,\n  \"action\": \"a\"\n}\n"},
		{"NDJSON of which no line parses", "{\"id\": \n{nope}\n"},
	}
	for _, tc := range tests {
		p := problemFrom(t, "POST "+tc.name, e.post(t, "application/json", []byte(tc.body)), http.StatusBadRequest)
		if p.Field != "body" || !strings.HasPrefix(p.Detail, "body: ") {
			t.Errorf("POST %s problem = %+v, want it to name the body", tc.name, p)
		}
	}
	if n := len(e.pageAll(t, "/v1/events", nil)); n != 0 {
		t.Errorf("store holds %d events after unparsable bodies, want 0", n)
	}
}

func TestIngestLimits(t *testing.T) { forEachStore(t, testIngestLimits) }

func testIngestLimits(t *testing.T, o options) {
	o.now, o.limits = testNow, agenttrail.Limits{MaxEventBytes: 600, MaxRequestBytes: 4000, MaxBatchEvents: 5}
	e := newEnv(t, o)

	// Too many events: 413, nothing stored.
	var six []string
	for i := range 6 {
		six = append(six, validEvent(fmt.Sprintf("many-%d", i)))
	}
	for _, body := range []string{strings.Join(six, "\n"), "[" + strings.Join(six, ",") + "]"} {
		p := problemFrom(t, "POST 6 events over a limit of 5", e.post(t, "application/json", []byte(body)), http.StatusRequestEntityTooLarge)
		if p.Code != agenttrail.ETOOLARGE || !strings.Contains(p.Detail, "5 events") {
			t.Errorf("problem = %+v, want too_large naming the 5 events limit", p)
		}
	}

	// Too many bytes: 413, whether Content-Length says so or not.
	big := []byte(strings.Repeat(validEvent("big")+"\n", 25))
	problemFrom(t, "POST 5 KB over a limit of 4000 bytes", e.post(t, "application/x-ndjson", big), http.StatusRequestEntityTooLarge)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/events", struct{ *bytes.Reader }{bytes.NewReader(big)})
	req.ContentLength = -1 // chunked: only the byte count while reading can tell
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("POST chunked: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("POST chunked 5 KB over a limit of 4000 bytes = %d, want 413", resp.StatusCode)
	}

	// One event over the event limit: rejected by index, the rest stored.
	large := strings.Replace(validEvent("large"), `"action":"shell_exec"`, `"action":"`+strings.Repeat("x", 700)+`"`, 1)
	got := decodeIngest(t, "POST with one large event", e.post(t, "application/x-ndjson", []byte(validEvent("small-0")+"\n"+large+"\n"+validEvent("small-2"))))
	if got.Accepted != 2 || len(got.Rejected) != 1 || got.Rejected[0].Index != 1 || !strings.HasPrefix(got.Rejected[0].Error, "event: ") {
		t.Errorf("POST with one large event = %+v, want 2 accepted and index 1 rejected as too large", got)
	}
	if n := len(e.pageAll(t, "/v1/events", nil)); n != 2 {
		t.Errorf("store holds %d events, want 2", n)
	}
}

func TestIngestDuplicates(t *testing.T) { forEachStore(t, testIngestDuplicates) }

func testIngestDuplicates(t *testing.T, o options) {
	o.now = testNow
	e := newEnv(t, o)
	body := []byte(validEvent("d-1") + "\n" + validEvent("d-2") + "\n" + validEvent("d-1") + "\n")
	tests := []struct {
		name string
		want wire.IngestResult
	}{
		{"first", wire.IngestResult{Accepted: 2, Duplicates: 1}},
		{"again", wire.IngestResult{Accepted: 0, Duplicates: 3}},
	}
	for _, tc := range tests {
		got := decodeIngest(t, "POST "+tc.name, e.post(t, "application/x-ndjson", body))
		if got.Accepted != tc.want.Accepted || got.Duplicates != tc.want.Duplicates || len(got.Rejected) != 0 {
			t.Errorf("POST %s = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// The same id in another org is another event.
	other := strings.Replace(validEvent("d-1"), `{`, `{"org":"globex",`, 1)
	if got := decodeIngest(t, "POST other org", e.post(t, "", []byte(other))); got.Accepted != 1 {
		t.Errorf("POST d-1 in another org = %+v, want it accepted", got)
	}
}

func TestIngestQueueUnavailable(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	e.stopRun() // a pipeline that has shut down refuses work
	r := e.post(t, "application/json", []byte(validEvent("late")))
	p := problemFrom(t, "POST after the pipeline stopped", r, http.StatusServiceUnavailable)
	if p.Code != agenttrail.EUNAVAILABLE || r.header.Get("Retry-After") == "" {
		t.Errorf("POST after the pipeline stopped = %+v, Retry-After %q; want unavailable with Retry-After", p, r.header.Get("Retry-After"))
	}
}

// TestIngestDeepEventRejectedByIndex: an event nested 10,001 levels deep
// in a JSON array, between good ones, is rejected by index; the rest of
// the array is stored, as for every other bad event.
func TestIngestDeepEventRejectedByIndex(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	deep := `{"actor_type":"agent","actor_id":"a","source":"shell","action":"x","result":"success","metadata":{"d":` +
		strings.Repeat(`[`, 10001) + `"s\"]"` + strings.Repeat(`]`, 10001) + `}}`
	for _, body := range []string{
		"[" + validEvent("deep-0") + ", " + deep + ", " + validEvent("deep-2") + "]",
		validEvent("deep-3") + "\n" + deep + "\n" + validEvent("deep-5"),
	} {
		got := decodeIngest(t, "POST with a deep event", e.post(t, "application/json", []byte(body)))
		if got.Accepted != 2 || len(got.Rejected) != 1 || got.Rejected[0].Index != 1 {
			t.Errorf("POST with an event nested 10,001 deep = %+v, want 2 accepted and event 1 rejected", got)
		}
	}
}

// TestIngestUnclosedArray: a body of "[" alone once panicked the handler
// (the connection dropped); it is a 400 like any unparsable body.
func TestIngestUnclosedArray(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	for _, body := range []string{"[", "[ \n", "[" + validEvent("x") + ","} {
		problemFrom(t, "POST "+body, e.post(t, "application/json", []byte(body)), http.StatusBadRequest)
	}
}
