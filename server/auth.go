package server

import (
	"context"
	"net/http"
	"slices"

	"github.com/agenttrail/agenttrail"
)

// Role is what a principal may do. RoleIngest may only record events;
// RoleRead may only read them; RoleAdmin may do both.
type Role string

// The roles of DESIGN §2.
const (
	RoleIngest Role = "ingest"
	RoleRead   Role = "read"
	RoleAdmin  Role = "admin"
)

// AllOrgs is the Org of a principal that is not scoped to one org.
const AllOrgs = "*"

// Principal is the caller of a request: a name for logs, a role, and the org
// it is scoped to (AllOrgs for every org).
type Principal struct {
	Name string
	Role Role
	Org  string
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
	return p.Role == RoleAdmin || p.Role == need
}

// noOrg is an org value no stored event can have (Validate requires a
// non-empty org), so a filter scoped to it matches nothing.
const noOrg = ""

// scope narrows f to what p may see. It is the one place reads are scoped:
// every handler passes its filter through it before the store sees it. A
// scoped principal asking for other orgs gets a filter that matches nothing,
// never another org's events.
func scope(p Principal, f agenttrail.Filter) agenttrail.Filter {
	if p.Org == AllOrgs {
		return f
	}
	if len(f.Org) == 0 || slices.Contains(f.Org, p.Org) {
		f.Org = []string{p.Org}
	} else {
		f.Org = []string{noOrg}
	}
	return f
}

// ingestOrg returns the org p's events default to, "" meaning the server's
// default org.
func ingestOrg(p Principal) string {
	if p.Org == AllOrgs {
		return ""
	}
	return p.Org
}
