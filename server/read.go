package server

import (
	"net/http"
	"slices"
	"time"

	"github.com/agenttrail/agenttrail"
)

// EventsResponse is the answer of GET /v1/events. NextCursor is nil on the
// last page; in seq order it is always set, so a poller can come back.
type EventsResponse struct {
	Events     []agenttrail.Event `json:"events"`
	NextCursor *string            `json:"next_cursor"`
}

// AggregateResponse is the answer of GET /v1/aggregate: buckets by the value
// of By, largest count first.
type AggregateResponse struct {
	By      agenttrail.Dimension `json:"by"`
	Buckets []agenttrail.Bucket  `json:"buckets"`
}

// TimeseriesResponse is the answer of GET /v1/timeseries: one bucket per
// Interval from the one holding Since up to Until, empty ones included.
type TimeseriesResponse struct {
	Interval agenttrail.Interval     `json:"interval"`
	By       agenttrail.Dimension    `json:"by,omitempty"`
	Since    time.Time               `json:"since"`
	Until    time.Time               `json:"until"`
	Buckets  []agenttrail.TimeBucket `json:"buckets"`
}

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
	q, err := agenttrail.ParseQuery(v, s.now())
	if err != nil {
		return nil, err
	}
	q.Filter = scope(principalOf(r.Context()), q.Filter)
	page, err := s.store.Query(r.Context(), q)
	if err != nil {
		return nil, err
	}
	resp := EventsResponse{Events: page.Events}
	if resp.Events == nil {
		resp.Events = []agenttrail.Event{}
	}
	if c := agenttrail.NextCursor(v, q, page); c != "" {
		c = s.cursors.sign(c)
		resp.NextCursor = &c
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
	f, by, err := agenttrail.ParseAggregate(r.URL.Query(), s.now())
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
	return AggregateResponse{By: by, Buckets: buckets}, nil
}

// timeseries is GET /v1/timeseries.
func (s *Server) timeseries(r *http.Request) (any, error) {
	f, iv, by, err := agenttrail.ParseTimeseries(r.URL.Query(), s.now())
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
	return TimeseriesResponse{Interval: iv, By: by, Since: f.Since, Until: f.Until, Buckets: buckets}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
