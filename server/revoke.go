package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// errTokenRevoked is the cause of the context of a request whose token was
// revoked while it was in progress.
var errTokenRevoked = errors.New("the bearer token was revoked")

// inflight holds the requests in progress by token id, so that a revocation
// ends them all: a stream or an export would otherwise go on delivering to
// a token that no longer opens anything. Safe for concurrent use.
type inflight struct {
	mu      sync.Mutex
	byToken map[string]map[*context.CancelCauseFunc]struct{}
}

func newInflight() *inflight {
	return &inflight{byToken: map[string]map[*context.CancelCauseFunc]struct{}{}}
}

// add registers a request of token id, ended by cancel, and returns the
// function that removes it.
func (f *inflight) add(id string, cancel context.CancelCauseFunc) (remove func()) {
	key := &cancel
	f.mu.Lock()
	reqs := f.byToken[id]
	if reqs == nil {
		reqs = map[*context.CancelCauseFunc]struct{}{}
		f.byToken[id] = reqs
	}
	reqs[key] = struct{}{}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(reqs, key)
		if len(reqs) == 0 { // reqs is f.byToken[id] until it is empty
			delete(f.byToken, id)
		}
		f.mu.Unlock()
	}
}

// revoke ends the requests in progress of the tokens ids.
func (f *inflight) revoke(ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		for cancel := range f.byToken[id] {
			(*cancel)(errTokenRevoked)
		}
	}
}

// errSessionExpired is the cause of the context of a request whose session
// token expired while it was in progress.
var errSessionExpired = errors.New("the session expired")

// revoked reports whether ctx ended because its token was revoked or its
// session expired. Long answers check it after each extension of their
// write deadline, which would otherwise undo the one endOnRevoke set. (Not
// ctx.Err(): net/http also ends a request's context when the server's read
// timeout passes during a long answer.)
func revoked(ctx context.Context) bool {
	c := context.Cause(ctx)
	return c == errTokenRevoked || c == errSessionExpired
}

type keepKey struct{}

// keepThroughRevocation takes the request of ctx out of the requests a
// revocation ends: the one that revokes its own token (signing out, an
// admin revoking the token it uses) must still get its answer.
func keepThroughRevocation(ctx context.Context) {
	if keep, ok := ctx.Value(keepKey{}).(func()); ok {
		keep()
	}
}

// endOnRevoke returns r with a context that ends when p's token is revoked,
// and the function to call when the request is done. When it ends, the
// connection's deadlines are set to now, so a handler blocked writing to a
// client that does not read (or reading a body it sends slowly) returns at
// once instead of at its deadline; a stream or an export then stops, and an
// export's body is cut visibly short (see cutExport).
func (s *Server) endOnRevoke(p Principal, w http.ResponseWriter, r *http.Request) (*http.Request, func()) {
	ta, ok := s.auth.(*TokenAuth)
	if !ok || p.TokenID == "" {
		return r, func() {}
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	remove := s.inflight.add(p.TokenID, cancel)
	rc := http.NewResponseController(w)
	stop := context.AfterFunc(ctx, func() {
		if revoked(ctx) {
			now := time.Now()
			_ = rc.SetWriteDeadline(now)
			_ = rc.SetReadDeadline(now)
		}
	})
	// A session token ends at its expiry as at its revocation.
	expire := func() bool { return true }
	if !p.Expires.IsZero() {
		expire = time.AfterFunc(time.Until(p.Expires), func() { cancel(errSessionExpired) }).Stop
	}
	keep := sync.OnceFunc(func() {
		remove()
		stop()
		expire()
	})
	// A new variable, not ctx: the AfterFunc above reads ctx from another
	// goroutine when a revocation ends it.
	kept := context.WithValue(ctx, keepKey{}, keep)
	// A revocation loaded between Authenticate and add found nothing to
	// end; the set it stored says so here (TokenAuth.reload stores the
	// set before it tells inflight).
	if !ta.live(p.TokenID) {
		cancel(errTokenRevoked)
	}
	return r.WithContext(kept), func() {
		keep()
		cancel(nil)
	}
}
