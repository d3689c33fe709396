package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
)

// Role is what a principal may do. RoleIngest may only record events;
// RoleRead may only read them; RoleAdmin may do both.
type Role string

// The roles a token may have.
const (
	RoleIngest Role = "ingest"
	RoleRead   Role = "read"
	RoleAdmin  Role = "admin"
)

// roleAny marks routes every authenticated caller may use, whatever its
// role: those that concern only the caller's own credential (who am I,
// sign out). It is never a token's role.
const roleAny Role = "any"

// roleMetrics marks /metrics when Config.MetricsAuth is set: read or admin
// tokens of every org may scrape it, since its counters cover every org.
const roleMetrics Role = "metrics"

// roleOperator marks the profiling endpoints: only an admin of every org,
// the server's operator, may profile a process that serves every org.
const roleOperator Role = "operator"

// AllOrgs is the Org of a principal that is not scoped to one org.
const AllOrgs = "*"

// Principal is the caller of a request: a name for logs, a role, and the org
// it is scoped to (AllOrgs for every org).
type Principal struct {
	Name string
	Role Role
	Org  string
	// Expires is when a session token's principal stops being one; zero
	// when the credential does not expire.
	Expires time.Time
	// TokenID is the id of the token the caller authenticated with, by
	// which its requests in progress are ended when the token is revoked;
	// "" when the Authenticator has no such notion.
	TokenID string
}

// Authenticator identifies the caller of a request. It returns an
// EUNAUTHORIZED agenttrail error when the request carries no credential or
// a bad one. It is called concurrently, once per request, before any body
// is read.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// anonymous returns the caller when no Authenticator is configured: an
// admin of every org, the behaviour of a server without tokens.
func anonymous() Principal {
	return Principal{Name: "anonymous", Role: RoleAdmin, Org: AllOrgs}
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalOf returns the request's principal. Routes that skip
// authentication have none, and get one that may do nothing.
func principalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// allows reports whether p's role permits an operation needing need.
func (p Principal) allows(need Role) bool {
	switch need {
	case roleMetrics:
		return (p.Role == RoleAdmin || p.Role == RoleRead) && p.Org == AllOrgs
	case roleOperator:
		return p.Role == RoleAdmin && p.Org == AllOrgs
	}
	return p.Role == RoleAdmin || p.Role == need || need == roleAny
}

// noOrg is an org value no stored event can have (Validate allows only
// [A-Za-z0-9._-]), so a filter scoped to it matches nothing. It is not
// empty, so it survives as a query parameter (see scopeRequest).
const noOrg = "!none"

// scope narrows f to what p may see. It is the one place reads are scoped:
// every handler passes its filter through it before the store sees it. A
// scoped principal asking for other orgs gets a filter that matches nothing,
// never another org's events.
func scope(p Principal, f agenttrail.Filter) agenttrail.Filter {
	if p.Org == AllOrgs {
		return f
	}
	if p.Org != "" && (len(f.Org) == 0 || slices.Contains(f.Org, p.Org)) {
		f.Org = []string{p.Org}
	} else {
		f.Org = []string{noOrg}
	}
	return f
}

// scopeOf returns what p may write: a principal of one org writes to that
// org only, and its events default to it; a principal of every org writes
// anywhere. No principal writes the server's own events.
func scopeOf(p Principal) ingest.Scope {
	if p.Org == AllOrgs {
		return ingest.Scope{}
	}
	return ingest.Scope{DefaultOrg: p.Org, Org: p.Org}
}

// scopeRequest rewrites the org parameters of a read request to what p may
// see, with the same rule as scope. Done in the route wrapper for every read
// route, it scopes handlers that parse filters from the query, present and
// future, even one that forgets to call scope; handlers still call scope on
// the Filter they build, which changes nothing after this. Cursors are bound
// to the rewritten parameters, so a cursor minted for another org's view is
// refused.
func scopeRequest(p Principal, r *http.Request) *http.Request {
	if p.Org == AllOrgs {
		return r
	}
	v := r.URL.Query()
	v["org"] = scope(p, agenttrail.Filter{Org: v["org"]}).Org
	u := *r.URL
	u.RawQuery = v.Encode()
	r2 := *r
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return &r2
}

// serveAs serves an authenticated request of p on rt: the rate limit, then
// for read routes the org scope and the audit record.
func (s *Server) serveAs(p Principal, rt route, next http.Handler, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if ok, wait := s.limiter.allow(p.Name, start); !ok {
		s.writeRateLimited(w, r, p, wait)
		return
	}
	r, done := s.endOnRevoke(p, w, r)
	defer done()
	r = r.WithContext(withPrincipal(r.Context(), p))
	if rt.need != RoleRead {
		next.ServeHTTP(w, r)
		return
	}
	var raw url.Values
	if s.audit != nil {
		raw = r.URL.Query() // as sent, before scoping
	}
	r = scopeRequest(p, r)
	if s.audit == nil {
		next.ServeHTTP(w, r)
		return
	}
	aw := &auditWriter{ResponseWriter: w, start: start, emit: func(status int, took time.Duration) {
		s.audit.auditRead(p, rt, r, raw, status, took)
	}}
	next.ServeHTTP(aw, r)
	aw.fire(http.StatusOK)
}
