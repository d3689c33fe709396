package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

func TestScope(t *testing.T) {
	acme := Principal{Name: "acme", Role: RoleRead, Org: "acme"}
	all := Principal{Name: "root", Role: RoleAdmin, Org: AllOrgs}
	for _, tc := range []struct {
		p    Principal
		orgs []string
		want []string
	}{
		{all, nil, nil},
		{all, []string{"globex"}, []string{"globex"}},
		{acme, nil, []string{"acme"}},
		{acme, []string{"acme"}, []string{"acme"}},
		{acme, []string{"globex", "acme"}, []string{"acme"}},
		{acme, []string{"globex"}, []string{noOrg}},
		{Principal{}, nil, []string{noOrg}}, // no principal: nothing
	} {
		got := scope(tc.p, agenttrail.Filter{Org: tc.orgs}).Org
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || len(got) != len(tc.want) {
			t.Errorf("scope(%s, org=%v) = %q, want %q", tc.p.Org, tc.orgs, got, tc.want)
		}
	}
}

func TestScopedCallers(t *testing.T) {
	tk := tokens{
		"root":          {Name: "root", Role: RoleAdmin, Org: AllOrgs},
		"acme-read":     {Name: "acme-read", Role: RoleRead, Org: "acme"},
		"acme-ingest":   {Name: "acme-ingest", Role: RoleIngest, Org: "acme"},
		"globex-ingest": {Name: "globex-ingest", Role: RoleIngest, Org: "globex"},
	}
	e := newEnv(t, options{now: testNow, auth: tk})
	as := func(token string) http.Header {
		return http.Header{"Authorization": {"Bearer " + token}}
	}

	// Events default to the token's org; another org is rejected by index.
	body := validEvent("s-1") + "\n" + strings.Replace(validEvent("s-2"), "{", `{"org":"globex",`, 1) + "\n" + strings.Replace(validEvent("s-3"), "{", `{"org":"acme",`, 1)
	got := decodeIngest(t, "POST as acme-ingest", e.do(t, http.MethodPost, "/v1/events", as("acme-ingest"), []byte(body)))
	if got.Accepted != 2 || len(got.Rejected) != 1 || got.Rejected[0].Index != 1 || !strings.HasPrefix(got.Rejected[0].Error, "org: ") {
		t.Errorf("POST as acme-ingest = %+v, want 2 accepted and index 1 rejected naming org", got)
	}
	decodeIngest(t, "POST as globex-ingest", e.do(t, http.MethodPost, "/v1/events", as("globex-ingest"), []byte(validEvent("g-1")+"\n"+validEvent("s-1"))))

	orgsOf := func(token, path string) []string {
		t.Helper()
		r := e.do(t, http.MethodGet, path, as(token), nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s as %s = %d, want 200: %s", path, token, r.status, r.body)
		}
		var page wire.Page
		if err := jsonUnmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		var orgs []string
		for _, ev := range page.Events {
			orgs = append(orgs, ev.Org+"/"+ev.ID)
		}
		return orgs
	}
	for _, tc := range []struct {
		token, path, want string
	}{
		{"root", "/v1/events?sort=seq", "acme/s-1,acme/s-3,globex/g-1,globex/s-1"},
		{"acme-read", "/v1/events?sort=seq", "acme/s-1,acme/s-3"},
		{"acme-read", "/v1/events?sort=seq&org=globex", ""},
		{"acme-read", "/v1/events?sort=seq&org=globex&org=acme", "acme/s-1,acme/s-3"},
	} {
		if got := strings.Join(orgsOf(tc.token, tc.path), ","); got != tc.want {
			t.Errorf("GET %s as %s = %q, want %q", tc.path, tc.token, got, tc.want)
		}
	}
	// Aggregations and single events are scoped the same way.
	r := e.do(t, http.MethodGet, "/v1/aggregate?by=org", as("acme-read"), nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"key":"acme","count":2`) || strings.Contains(string(r.body), "globex") {
		t.Errorf("GET /v1/aggregate?by=org as acme-read = %d %s, want acme only", r.status, r.body)
	}
	r = e.do(t, http.MethodGet, "/v1/timeseries?interval=day&org=globex", as("acme-read"), nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), `"count":1`) || strings.Contains(string(r.body), `"count":2`) {
		t.Errorf("GET /v1/timeseries?org=globex as acme-read = %d %s, want only empty buckets", r.status, r.body)
	}
	if r := e.do(t, http.MethodGet, "/v1/events/g-1", as("acme-read"), nil); r.status != http.StatusNotFound {
		t.Errorf("GET /v1/events/g-1 (globex) as acme-read = %d, want 404", r.status)
	}
	if r := e.do(t, http.MethodGet, "/v1/events/s-1", as("acme-read"), nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"org":"acme"`) {
		t.Errorf("GET /v1/events/s-1 (in both orgs) as acme-read = %d %s, want the acme one", r.status, r.body)
	}

	// Roles and credentials.
	for _, tc := range []struct {
		method, path string
		header       http.Header
		status       int
	}{
		{http.MethodGet, "/v1/events", nil, http.StatusUnauthorized},
		{http.MethodGet, "/v1/events", as("nobody"), http.StatusUnauthorized},
		{http.MethodGet, "/v1/events", as("acme-ingest"), http.StatusForbidden},
		{http.MethodGet, "/v1/aggregate?by=org", as("acme-ingest"), http.StatusForbidden},
		{http.MethodPost, "/v1/events", as("acme-read"), http.StatusForbidden},
		{http.MethodGet, "/livez", nil, http.StatusOK},
		{http.MethodGet, "/openapi.json", nil, http.StatusOK},
	} {
		r := e.do(t, tc.method, tc.path, tc.header, []byte(validEvent("")))
		if r.status != tc.status {
			t.Errorf("%s %s with %v = %d, want %d", tc.method, tc.path, tc.header, r.status, tc.status)
		}
		if tc.status >= 400 {
			problemFrom(t, tc.method+" "+tc.path, r, tc.status)
		}
		if tc.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s = 401 with WWW-Authenticate %q, want a Bearer challenge", tc.method, tc.path, r.header.Get("WWW-Authenticate"))
		}
	}
}
