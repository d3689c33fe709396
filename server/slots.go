package server

import (
	"sync"

	"github.com/agenttrail/agenttrail"
)

// slotCaps bounds the concurrent long requests of one kind (streams,
// exports): in all, per org, and per token. The caps per org and per token
// are below the one in all, so one org, or one token, can never take every
// slot and lock the others out. A zero cap is no cap.
type slotCaps struct {
	total, perOrg, perToken int
}

// slots counts the long requests of one kind in progress, by org and by
// token, against its caps. Safe for concurrent use.
type slots struct {
	what string // "streams", "exports": for the refusals
	caps slotCaps

	mu      sync.Mutex
	total   int
	byOrg   map[string]int
	byToken map[string]int
}

func newSlots(what string, caps slotCaps) *slots {
	return &slots{what: what, caps: caps, byOrg: map[string]int{}, byToken: map[string]int{}}
}

// take takes a slot for p and returns the function that gives it back.
// Past the cap of p's token or org it is an ERATELIMIT error (429: the
// caller holds too many); past the cap in all, an EUNAVAILABLE one (503:
// the server is busy). The org of a principal of every org is AllOrgs, a
// bucket of its own.
func (s *slots) take(p Principal) (release func(), err error) {
	token := p.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.caps.perToken > 0 && s.byToken[token] >= s.caps.perToken:
		return nil, agenttrail.Errorf(agenttrail.ERATELIMIT, "the token %q has %d %s open, its most; close one or try again later", token, s.byToken[token], s.what)
	case s.caps.perOrg > 0 && s.byOrg[p.Org] >= s.caps.perOrg:
		return nil, agenttrail.Errorf(agenttrail.ERATELIMIT, "the org %q has %d %s open, its most; close one or try again later", p.Org, s.byOrg[p.Org], s.what)
	case s.caps.total > 0 && s.total >= s.caps.total:
		return nil, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "too many open %s (%d); try again later", s.what, s.total)
	}
	s.total++
	s.byOrg[p.Org]++
	s.byToken[token]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.byOrg[p.Org]--; s.byOrg[p.Org] == 0 {
				delete(s.byOrg, p.Org)
			}
			if s.byToken[token]--; s.byToken[token] == 0 {
				delete(s.byToken, token)
			}
		})
	}, nil
}
