// Package capture holds what every capture surface shares: the Recorder it
// records through and how it resolves who is acting. Each surface is a
// subpackage (capture/llm, capture/mcp, capture/egress, capture/shell, …).
package capture

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/agenttrail/agenttrail"
)

// Recorder takes audit events. Record must return at once and never fail the
// caller's operation: the SDK's client.Recorder queues, batches, retries and
// spools. Implementations are safe for concurrent use.
type Recorder interface {
	Record(ctx context.Context, e agenttrail.Event)
}

// HeaderActorID is the request header an agent may set to say who it is when
// it presents no mapped credential. Proxies remove it before forwarding.
const HeaderActorID = "X-Agenttrail-Actor-Id"

// Actor is who performs an action, and the org and project it is recorded
// under.
type Actor struct {
	Type    agenttrail.ActorType `json:"actor_type,omitempty"`
	ID      string               `json:"actor_id"`
	Name    string               `json:"actor_name,omitempty"`
	Org     string               `json:"org,omitempty"`
	Project string               `json:"project,omitempty"`
	// Impersonate lets the actor send Kubernetes Impersonate-* headers
	// through the kube proxy, for the cluster's RBAC to allow or refuse;
	// without it the proxy refuses them, since they would otherwise act
	// under the proxy's own credential.
	Impersonate bool `json:"impersonate,omitempty"`
	// Session is the session recorded for this actor's actions when the
	// request names none (no X-Agenttrail-Session-Id header or baggage
	// entry), and for CONNECT tunnels, which cannot carry one.
	Session string `json:"session,omitempty"`
}

// Apply sets e's actor, org, project and session from a where e leaves them
// empty. An actor without a type is an agent.
func (a Actor) Apply(e *agenttrail.Event) {
	if e.ActorID == "" {
		e.ActorID, e.ActorName = a.ID, a.Name
		e.ActorType = a.Type
	}
	if e.ActorType == "" {
		e.ActorType = agenttrail.ActorAgent
	}
	if e.Org == "" {
		e.Org = a.Org
	}
	if e.Project == "" {
		e.Project = a.Project
	}
	if e.SessionID == "" {
		e.SessionID = a.Session
	}
}

// Identities resolves the actor of a request, in order: the credential the
// agent presents to the proxy (a configured map), the X-Agenttrail-Actor-Id
// header, then Default. Credentials are kept only as SHA-256 digests, so the
// map holds no secrets and lookups do not compare secret bytes. The zero
// value resolves everything to Default. It is safe for concurrent use once
// built.
//
// Every proxy applies one rule through Admit: once credentials are mapped,
// a request presenting none of them is refused unless AllowUnmapped is
// set. A proxy with no credentials mapped serves one agent, Default.
type Identities struct {
	Default Actor
	// AllowUnmapped admits requests whose credential is not mapped, as the
	// X-Agenttrail-Actor-Id header's actor or Default. Anyone who reaches
	// the proxy can then act through it under a name of their choosing.
	AllowUnmapped bool
	byHash        map[[32]byte]Actor
}

// Add maps credential to a.
func (ids *Identities) Add(credential string, a Actor) {
	if ids.byHash == nil {
		ids.byHash = map[[32]byte]Actor{}
	}
	ids.byHash[sha256.Sum256([]byte(credential))] = a
}

// Lookup returns the actor mapped to credential.
func (ids *Identities) Lookup(credential string) (Actor, bool) {
	if credential == "" {
		return Actor{}, false
	}
	a, ok := ids.byHash[sha256.Sum256([]byte(credential))]
	return a, ok
}

// Mapped reports whether any credential is mapped.
func (ids *Identities) Mapped() bool { return len(ids.byHash) > 0 }

// Admit resolves the actor of a request that presented credential (may be
// "") with headers h, and reports whether the request may go on: a mapped
// credential may; any other request only when AllowUnmapped is set or no
// credential is mapped at all. A refused request is attributed to Default
// (or "anonymous"), never to an actor it names itself.
func (ids *Identities) Admit(credential string, h http.Header) (Actor, bool) {
	if _, ok := ids.Lookup(credential); ok {
		return ids.Resolve(credential, nil), true
	}
	if ids.AllowUnmapped || !ids.Mapped() {
		return ids.Resolve("", h), true
	}
	a := ids.Resolve("", nil)
	if a.ID == "" {
		a.ID = "anonymous"
	}
	return a, false
}

// Resolve returns the actor for a request that presented credential (may be
// "") with headers h. Defaults fill what the resolved actor leaves empty.
func (ids *Identities) Resolve(credential string, h http.Header) Actor {
	a, ok := ids.Lookup(credential)
	if !ok {
		a = Actor{}
		if id := h.Get(HeaderActorID); id != "" {
			a.ID = id
		}
	}
	if a.ID == "" {
		a = ids.Default
	}
	return a.Or(ids.Default)
}

// Or completes a with def: the type, org, project and session a leaves
// empty come from def.
func (a Actor) Or(def Actor) Actor {
	a.Type = cmp.Or(a.Type, def.Type)
	a.Org = cmp.Or(a.Org, def.Org)
	a.Project = cmp.Or(a.Project, def.Project)
	a.Session = cmp.Or(a.Session, def.Session)
	return a
}

// LoadIdentities reads a JSON file mapping credentials to actors:
//
//	{"sk-proxy-1234": {"actor_id": "agent-ci", "actor_name": "CI agent", "org": "acme", "project": "payments", "session": "nightly-ci"}}
//
// session is the default session of the credential's actions: the one
// recorded when a request names none, and for CONNECT tunnels.
func LoadIdentities(path string, def Actor) (*Identities, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	var m map[string]Actor
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse identities %s: %w", path, err)
	}
	ids := &Identities{Default: def}
	for cred, a := range m {
		if a.ID == "" {
			return nil, fmt.Errorf("identities %s: a credential maps to an empty actor_id", path)
		}
		ids.Add(cred, a)
	}
	return ids, nil
}
