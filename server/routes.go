package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// route is one endpoint. need is the role it requires; "" means the route is
// open (health, metrics, the API description).
type route struct {
	method  string
	path    string
	need    Role
	handler http.Handler
}

// routeTable lists every endpoint the server serves. The OpenAPI test
// checks the document against it.
func (s *Server) routeTable() []route {
	return append([]route{
		{http.MethodPost, "/v1/events", RoleIngest, s.wrap(s.postEvents)},
		{http.MethodGet, "/v1/events", RoleRead, s.wrap(s.listEvents)},
		// OTLP/HTTP answers in the request's encoding, not as JSON.
		{http.MethodPost, "/v1/otlp/v1/traces", RoleIngest, http.HandlerFunc(s.postOTLPTraces)},
		{http.MethodPost, "/v1/otlp/v1/logs", RoleIngest, http.HandlerFunc(s.postOTLPLogs)},
		{http.MethodGet, "/v1/events/{id}", RoleRead, s.wrap(s.getEvent)},
		{http.MethodGet, "/v1/aggregate", RoleRead, s.wrap(s.aggregate)},
		{http.MethodGet, "/v1/timeseries", RoleRead, s.wrap(s.timeseries)},
		{http.MethodGet, "/v1/gaps", RoleRead, s.wrap(s.gaps)},
		// Export and stream write their own answers: they are streams.
		{http.MethodGet, "/v1/export", RoleRead, s.download(s.exportEvents)},
		{http.MethodGet, "/v1/stream", RoleRead, s.newStreams(streamCaps, streamPoll, streamHeartbeat)},
		{http.MethodGet, "/v1/integrity/key", RoleRead, s.wrap(s.integrityKey)},
		{http.MethodGet, "/v1/integrity/checkpoint", RoleRead, s.wrap(s.integrityCheckpoint)},
		{http.MethodGet, "/v1/integrity/checkpoints", RoleRead, s.wrap(s.integrityCheckpoints)},
		{http.MethodGet, "/v1/integrity/proof/{id}", RoleRead, s.wrap(s.integrityProof)},
		{http.MethodGet, "/v1/integrity/consistency", RoleRead, s.wrap(s.integrityConsistency)},
		{http.MethodGet, "/v1/integrity/bundle", RoleRead, s.download(s.integrityBundle)},
		{http.MethodPost, "/v1/session", "", s.wrap(s.postSession)},
		{http.MethodGet, "/v1/session", roleAny, s.wrap(s.getSession)},
		{http.MethodDelete, "/v1/session", roleAny, s.wrap(s.deleteSession)},
		{http.MethodGet, "/v1/tokens", RoleAdmin, s.wrap(s.listTokens)},
		{http.MethodPost, "/v1/tokens", RoleAdmin, s.wrap(s.createToken)},
		{http.MethodDelete, "/v1/tokens/{id}", RoleAdmin, s.wrap(s.revokeToken)},
		{http.MethodGet, "/v1/sinks", RoleAdmin, s.wrap(s.listSinks)},
		{http.MethodPost, "/v1/sinks/{name}/replay", RoleAdmin, s.wrap(s.replaySink)},
		{http.MethodGet, "/v1/sinks/{name}/dead-letters", RoleAdmin, s.wrap(s.listDeadLetters)},
		{http.MethodPost, "/v1/sinks/{name}/dead-letters/retry", RoleAdmin, s.wrap(s.retryDeadLetters)},
		{http.MethodGet, "/livez", "", s.wrap(s.livez)},
		{http.MethodGet, "/readyz", "", s.wrap(s.readyz)},
		{http.MethodGet, "/metrics", s.metricsNeed, s.metricsHandler()},
		{http.MethodGet, "/openapi.json", "", http.HandlerFunc(serveOpenAPI)},
		{http.MethodGet, "/debug/pprof/{profile}", roleOperator, http.HandlerFunc(serveProfile)},
	}, s.budgetRoutes()...)
}

// serveHTTP routes r. Requests no route matches are answered here, so that
// 404 and 405 are problem+json like every other error.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if h, pattern := s.mux.Handler(r); pattern == "" {
		s.unrouted(w, r, h)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// unrouted answers a request no route matched. The mux's own answer tells a
// wrong method (405, with Allow) from an unknown path (404); it is recorded
// and rewritten as a problem.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status != http.StatusMethodNotAllowed {
		writeProblem(w, r, s.log, agenttrail.Errorf(agenttrail.ENOTFOUND, "no such endpoint: %s", r.URL.Path))
		s.metrics.observe("unmatched", http.StatusNotFound, 0)
		return
	}
	allow := rec.header.Get("Allow")
	p := wire.Problem{
		Type:   wire.ProblemTypePrefix + "method_not_allowed",
		Title:  http.StatusText(http.StatusMethodNotAllowed),
		Status: http.StatusMethodNotAllowed,
		Detail: fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.ReplaceAll(allow, ",", ", ")),
		Code:   "method_not_allowed",
	}
	w.Header().Set("Allow", allow)
	sendProblem(w, s.log, p)
	s.metrics.observe("unmatched", p.Status, 0)
}

// headerRecorder captures the status and headers the mux's fallback handler
// writes, and discards its plain-text body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

// authenticate runs the Authenticator for routes that need a role, checks
// the role, and hands the request to serveAs (rate limit, org scope of read
// routes, audit record, Principal in the context). It also bounds
// the request body: only POST /v1/events reads one.
func (s *Server) authenticate(rt route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, int64(s.limits.MaxRequestBytes))
		if rt.need == "" {
			if s.allowAnonymous(w, r) && checkQuery(w, r, s) {
				next.ServeHTTP(w, r)
			}
			return
		}
		p := anonymous()
		if s.auth != nil {
			var err error
			if p, err = s.auth.Authenticate(r); err != nil {
				if s.allowAnonymous(w, r) {
					writeProblem(w, r, s.log, err)
				}
				return
			}
		}
		if !p.allows(rt.need) {
			writeProblem(w, r, s.log, agenttrail.Errorf(agenttrail.EFORBIDDEN, "a %s token may not %s %s", p.Role, r.Method, rt.path))
			return
		}
		if checkQuery(w, r, s) {
			s.serveAs(p, rt, next, w, r)
		}
	})
}

// checkQuery answers 400, naming the parameter, when r's query string does
// not parse cleanly, and reports whether r may go on. Every route passes
// here, so the handlers' r.URL.Query() (which drops what it cannot parse)
// only ever sees a query that parsed whole: "?actor_id=nobody;" must not
// become a query for every actor.
func checkQuery(w http.ResponseWriter, r *http.Request, s *Server) bool {
	if _, err := wire.ParseRawQuery(r.URL.RawQuery); err != nil {
		writeProblem(w, r, s.log, err)
		return false
	}
	return true
}
