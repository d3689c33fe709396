package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

func TestTokenRolesAndCredentials(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	malformed := http.Header{"Authorization": {"Bearer not-a-token"}}
	wrongSecret := http.Header{"Authorization": {"Bearer " + se.tokens["acme-read"][:len(se.tokens["acme-read"])-4] + "0000"}}
	unknownID := http.Header{"Authorization": {"Bearer " + TokenPrefix + strings.Repeat("0", tokenIDLen) + se.tokens["acme-read"][len(TokenPrefix)+tokenIDLen:]}}
	basic := http.Header{"Authorization": {"Basic " + se.tokens["root"]}}
	for _, tc := range []struct {
		method, path string
		header       http.Header
		status       int
	}{
		{http.MethodGet, "/v1/events", nil, http.StatusUnauthorized},
		{http.MethodGet, "/v1/events", malformed, http.StatusUnauthorized},
		{http.MethodGet, "/v1/events", wrongSecret, http.StatusUnauthorized},
		{http.MethodGet, "/v1/events", unknownID, http.StatusUnauthorized},
		{http.MethodGet, "/v1/events", basic, http.StatusUnauthorized},
		{http.MethodPost, "/v1/events", nil, http.StatusUnauthorized},
		{http.MethodGet, "/v1/events", se.as("acme-ingest"), http.StatusForbidden},
		{http.MethodGet, "/v1/aggregate?by=org", se.as("acme-ingest"), http.StatusForbidden},
		{http.MethodGet, "/v1/export", se.as("acme-ingest"), http.StatusForbidden},
		{http.MethodGet, "/v1/gaps", se.as("acme-ingest"), http.StatusForbidden},
		{http.MethodPost, "/v1/events", se.as("acme-read"), http.StatusForbidden},
		{http.MethodGet, "/v1/events", se.as("acme-read"), http.StatusOK},
		{http.MethodPost, "/v1/events", se.as("acme-ingest"), http.StatusOK},
		{http.MethodPost, "/v1/events", se.as("acme-admin"), http.StatusOK},
		{http.MethodGet, "/livez", nil, http.StatusOK},
	} {
		r := se.do(t, tc.method, tc.path, tc.header, []byte(validEvent("")))
		if r.status != tc.status {
			t.Errorf("%s %s with %v = %d, want %d: %s", tc.method, tc.path, tc.header, r.status, tc.status, r.body)
		}
	}

	// A token created while the server runs works at once; a revoked one
	// stops working within a second or so.
	token, _, err := se.file.Create("late", RoleRead, "acme", "tester", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	late := http.Header{"Authorization": {"Bearer " + token}}
	if r := se.do(t, http.MethodGet, "/v1/events", late, nil); r.status != http.StatusOK {
		t.Fatalf("GET /v1/events with a token created after start = %d, want 200: %s", r.status, r.body)
	}
	if _, err := se.file.Revoke("late", "tester", time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := se.do(t, http.MethodGet, "/v1/events", late, nil)
		if r.status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/events with a revoked token = %d 10s after the revocation, want 401", r.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestIngestTokenWritesOnlyItsOrg(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	got := se.ingestAs(t, "acme-ingest",
		eventJSON(map[string]any{"id": "i-1"}),
		eventJSON(map[string]any{"id": "i-2", "org": "globex"}),
		eventJSON(map[string]any{"id": "i-3", "org": "acme"}))
	if got.Accepted != 2 || len(got.Rejected) != 1 || got.Rejected[0].Index != 1 || !strings.HasPrefix(got.Rejected[0].Error, "org: ") {
		t.Fatalf("POST as acme-ingest = %+v, want 2 accepted and index 1 rejected naming org", got)
	}
	var page wire.Page
	r := se.do(t, http.MethodGet, "/v1/events?sort=seq&source=shell", se.as("root"), nil)
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range page.Events {
		ids = append(ids, e.Org+"/"+e.ID)
	}
	if strings.Join(ids, ",") != "acme/i-1,acme/i-3" {
		t.Errorf("stored %v, want acme/i-1 and acme/i-3", ids)
	}
}

func TestCursorsCannotWiden(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	seedOrgs(t, se)
	cursorOf := func(token, path string) string {
		t.Helper()
		var page wire.Page
		r := se.do(t, http.MethodGet, path, se.as(token), nil)
		if err := json.Unmarshal(r.body, &page); err != nil || page.NextCursor == "" {
			t.Fatalf("GET %s as %s = %d %s, want a next cursor", path, token, r.status, r.body)
		}
		return page.NextCursor
	}
	for _, minter := range []string{"root", "globex-read"} {
		for _, path := range []string{"/v1/events?limit=1&sort=seq", "/v1/events?limit=1", "/v1/events?limit=1&sort=seq&org=globex"} {
			c := cursorOf(minter, path)
			reuse := path + "&cursor=" + url.QueryEscape(c)
			r := se.do(t, http.MethodGet, reuse, se.as("acme-read"), nil)
			switch r.status {
			case http.StatusBadRequest:
				problemFrom(t, "GET "+reuse, r, http.StatusBadRequest)
			case http.StatusOK:
				if found := eventsPage(t, r.body); len(found) > 0 {
					t.Errorf("GET %s as acme-read with a cursor of %s shows %v", reuse, minter, found)
				}
			default:
				t.Errorf("GET %s as acme-read with a cursor of %s = %d, want 400 or 200: %s", reuse, minter, r.status, r.body)
			}
		}
	}
	// Tampered and truncated cursors are the caller's mistake, never a 500
	// or a wider query.
	c := cursorOf("acme-read", "/v1/events?limit=1&sort=seq")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, bad := range []string{c[:len(c)-1], c[:10], c + "A", flip(c, 0), flip(c, 5), flip(c, len(c)-1), flip(c, len(c)/2), "", "%00", strings.Repeat("A", 4096)} {
		path := "/v1/events?limit=1&sort=seq&cursor=" + url.QueryEscape(bad)
		r := se.do(t, http.MethodGet, path, se.as("acme-read"), nil)
		if r.status == http.StatusOK {
			if found := eventsPage(t, r.body); len(found) > 0 {
				t.Errorf("GET %s = 200 showing %v", path, found)
			}
			continue
		}
		if p := problemFrom(t, "GET "+path, r, http.StatusBadRequest); p.Field != "cursor" {
			t.Errorf("GET %s: problem names %q, want cursor", path, p.Field)
		}
	}
}

func TestAuditOfReads(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	seedOrgs(t, se)
	reads := []string{
		"/v1/events?actor_id=agent-ac&limit=5",
		"/v1/aggregate?by=source&org=globex",
		"/v1/timeseries?interval=day",
		"/v1/events/a-1",
		"/v1/gaps?since=1h",
		"/v1/export?format=ndjson&project=proj-ac",
	}
	for _, p := range reads {
		if r := se.do(t, http.MethodGet, p, se.as("acme-read"), nil); r.status != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", p, r.status, r.body)
		}
	}
	want := map[string]string{ // action -> a filter it must record
		"events.query":      `"actor_id":["agent-ac"]`,
		"events.aggregate":  `"org":["globex"]`,
		"events.timeseries": `"interval":["day"]`,
		"events.get":        `"path":"/v1/events/a-1"`,
		"events.gaps":       `"since":["1h"]`,
		"events.export":     `"project":["proj-ac"]`,
	}
	var audits []agenttrail.Event
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page wire.Page
		r := se.do(t, http.MethodGet, "/v1/events?source=audit&actor_id=acme-read&limit=200&sort=seq", se.as("root"), nil)
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
		audits = page.Events
		if len(audits) >= len(reads) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := map[string]agenttrail.Event{}
	for _, e := range audits {
		got[e.Action] = e
	}
	for action, filter := range want {
		e, ok := got[action]
		switch {
		case !ok:
			t.Errorf("no %s audit event of acme-read; have %d audit events", action, len(audits))
		case e.Org != "acme" || e.ActorType != agenttrail.ActorUser || e.Source != agenttrail.SourceAudit || e.Result != agenttrail.ResultSuccess || e.StatusCode != 200:
			t.Errorf("%s audit event = org %s, actor_type %s, source %s, result %s, status %d; want acme, user, audit, success, 200",
				action, e.Org, e.ActorType, e.Source, e.Result, e.StatusCode)
		case !strings.Contains(string(e.Metadata), filter):
			t.Errorf("%s audit event metadata %s lacks %s", action, e.Metadata, filter)
		}
	}

	// Token changes are in the trail too, made by whoever made them.
	if _, err := se.file.Revoke("globex-read", "carol", time.Now()); err != nil {
		t.Fatal(err)
	}
	se.do(t, http.MethodGet, "/v1/events", se.as("globex-read"), nil) // makes the server look at the file
	deadline = time.Now().Add(10 * time.Second)
	for {
		var page wire.Page
		r := se.do(t, http.MethodGet, "/v1/events?source=audit&resource_type=token&limit=200&sort=seq", se.as("root"), nil)
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		var creates, revokes int
		for _, e := range page.Events {
			switch {
			case e.Action == "token.create" && e.ActorID == "tester":
				creates++
			case e.Action == "token.revoke" && e.ActorID == "carol" && e.ResourceID == "globex-read" && e.Org == "globex":
				revokes++
			}
		}
		if creates == len(secTokens) && revokes == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token audit events: %d token.create by tester (want %d), %d token.revoke of globex-read by carol (want 1)", creates, len(secTokens), revokes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRateLimit(t *testing.T) {
	// One request per 10 s after the burst: a loaded machine cannot refill
	// the bucket between the requests of this test.
	se := newSecEnv(t, secOptions{rate: RateLimit{Rate: 0.1, Burst: 3}})
	var limited response
	for i := range 5 {
		r := se.do(t, http.MethodGet, "/v1/events?limit=1", se.as("acme-read"), nil)
		if i < 3 && r.status != http.StatusOK {
			t.Fatalf("request %d of a burst of 3 = %d, want 200: %s", i+1, r.status, r.body)
		}
		if i >= 3 {
			limited = r
		}
	}
	problemFrom(t, "request over the burst", limited, http.StatusTooManyRequests)
	if s, err := strconv.Atoi(limited.header.Get("Retry-After")); err != nil || s < 1 || s > 10 {
		t.Errorf("Retry-After = %q, want 1 to 10 seconds at 0.1 requests/s", limited.header.Get("Retry-After"))
	}
	// Buckets are per token.
	if r := se.do(t, http.MethodGet, "/v1/events?limit=1", se.as("globex-read"), nil); r.status != http.StatusOK {
		t.Errorf("another token after acme-read was limited = %d, want 200", r.status)
	}
}

// TestAuditQueueDropsWhenFull checks that reads never wait for their audit
// record: past the queue's bound records are dropped and counted.
func TestAuditQueueDropsWhenFull(t *testing.T) {
	e := newEnv(t, options{})
	a := newAuditor(e.srv, prometheus.NewRegistry()) // not started: nothing drains it
	p := Principal{Name: "reader", Role: RoleRead, Org: "acme"}
	rt := route{method: http.MethodGet, path: "/v1/events"}
	r, _ := http.NewRequest(http.MethodGet, "/v1/events?limit=1", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range auditQueue + 5 {
			a.auditRead(p, rt, r, r.URL.Query(), http.StatusOK, time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("recording audit events blocked on a full queue")
	}
	var m dto.Metric
	if err := a.dropped.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 5 {
		t.Errorf("agenttrail_audit_dropped_total = %v, want 5", got)
	}
}
