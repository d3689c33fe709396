package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestMalformedQueryIsRefusedEverywhere is finding 7 of the second security
// review: url.ParseQuery drops a pair it cannot parse, so
// "?actor_id=nobody;" was a query for every actor. An attacker sends
// every malformed query to every endpoint, with a token that may use it,
// and wants a 400 naming the parameter, never an answer.
func TestMalformedQueryIsRefusedEverywhere(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	seedOrgs(t, se)
	endpoints := []struct{ method, path, extra string }{
		{http.MethodGet, "/v1/events", ""},
		{http.MethodGet, "/v1/events/a-0", ""},
		{http.MethodGet, "/v1/aggregate", "by=actor_id&"},
		{http.MethodGet, "/v1/timeseries", "interval=hour&"},
		{http.MethodGet, "/v1/gaps", ""},
		{http.MethodGet, "/v1/export", ""},
		{http.MethodGet, "/v1/stream", "since=1h&"},
		{http.MethodPost, "/v1/events", ""},
		{http.MethodGet, "/livez", ""},
		{http.MethodGet, "/readyz", ""},
		{http.MethodGet, "/metrics", ""},
		{http.MethodGet, "/openapi.json", ""},
	}
	queries := []struct{ raw, field string }{
		{"actor_id=nobody;", "actor_id"},
		{"actor_id=nobody;org=acme", "actor_id"},
		{"org=acme;org=globex", "org"},
		{"actor_id=%zz", "actor_id"},
		{"actor_id=nobody%", "actor_id"},
		{"%zz=nobody", "query"},
		{";", "query"},
	}
	for _, ep := range endpoints {
		for _, q := range queries {
			path := ep.path + "?" + ep.extra + q.raw
			var body []byte
			if ep.method == http.MethodPost {
				body = []byte(eventJSON(map[string]any{"id": "posted-with-bad-query"}))
			}
			r := se.do(t, ep.method, path, se.as("root"), body)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s %s = %d, want 400: %.200s", ep.method, path, r.status, r.body)
				continue
			}
			if p := problemFrom(t, ep.method+" "+path, r, http.StatusBadRequest); p.Field != q.field || !strings.Contains(p.Detail, q.field) {
				t.Errorf("%s %s: problem field %q detail %q, want it to name %q", ep.method, path, p.Field, p.Detail, q.field)
			}
		}
	}
	// A scoped reader too: the org rewrite must not launder the query.
	r := se.do(t, http.MethodGet, "/v1/events?actor_id=nobody;", se.as("acme-read"), nil)
	problemFrom(t, "GET /v1/events?actor_id=nobody; as acme-read", r, http.StatusBadRequest)
	// And nothing was written by the refused POSTs.
	if r := se.do(t, http.MethodGet, "/v1/events/posted-with-bad-query", se.as("root"), nil); r.status != http.StatusNotFound {
		t.Errorf("GET the event POSTed with a bad query = %d, want 404", r.status)
	}
	// A clean query that merely looks odd still works: an encoded ';' is
	// a character of the value.
	if r := se.do(t, http.MethodGet, "/v1/events?actor_id=nobody%3B", se.as("root"), nil); r.status != http.StatusOK || strings.Contains(string(r.body), "agent-ac") {
		t.Errorf("GET /v1/events?actor_id=nobody%%3B = %d %.200s, want 200 and no events", r.status, r.body)
	}
}
