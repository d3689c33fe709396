package server

import (
	"net/http"
	"slices"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// listEvents is GET /v1/events.
func (s *Server) listEvents(r *http.Request) (any, error) {
	v := r.URL.Query()
	if len(v["cursor"]) == 1 {
		inner, err := s.cursors.open(v.Get("cursor"))
		if err != nil {
			return nil, err
		}
		v.Set("cursor", inner)
	}
	q, err := wire.ParseQuery(v, s.now())
	if err != nil {
		return nil, err
	}
	q.Filter = scope(principalOf(r.Context()), q.Filter)
	page, err := s.store.Query(r.Context(), q)
	if err != nil {
		return nil, err
	}
	resp := wire.Page{Events: page.Events}
	if c := wire.NextCursor(v, q, page); c != "" {
		resp.NextCursor = s.cursors.sign(c)
	}
	return resp, nil
}

// getEvent is GET /v1/events/{id}. Its one parameter, org, picks among
// events of several orgs that share an id.
func (s *Server) getEvent(r *http.Request) (any, error) {
	v := r.URL.Query()
	for _, k := range sortedKeys(v) {
		if k != "org" {
			return nil, agenttrail.Invalid(k, "unknown query parameter")
		}
	}
	for _, o := range v["org"] {
		if o == "" {
			return nil, agenttrail.Invalid("org", "must not be empty")
		}
	}
	f := scope(principalOf(r.Context()), agenttrail.Filter{Org: v["org"]})
	ev, err := s.store.Get(r.Context(), r.PathValue("id"), f)
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// aggregate is GET /v1/aggregate.
func (s *Server) aggregate(r *http.Request) (any, error) {
	f, by, err := wire.ParseAggregate(r.URL.Query(), s.now())
	if err != nil {
		return nil, err
	}
	f = scope(principalOf(r.Context()), f)
	buckets, err := s.store.Aggregate(r.Context(), f, by)
	if err != nil {
		return nil, err
	}
	if buckets == nil {
		buckets = []agenttrail.Bucket{}
	}
	return wire.Aggregate{By: by, Buckets: buckets}, nil
}

// timeseries is GET /v1/timeseries.
func (s *Server) timeseries(r *http.Request) (any, error) {
	f, iv, by, err := wire.ParseTimeseries(r.URL.Query(), s.now())
	if err != nil {
		return nil, err
	}
	f = scope(principalOf(r.Context()), f)
	buckets, err := s.store.Series(r.Context(), f, iv, by)
	if err != nil {
		return nil, err
	}
	if buckets == nil {
		buckets = []agenttrail.TimeBucket{}
	}
	return wire.Timeseries{Interval: iv, By: by, Since: f.Since, Until: f.Until, Buckets: buckets}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
