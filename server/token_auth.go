package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenttrail/agenttrail"
)

// tokenRecheck is how often a known token makes TokenAuth look at its
// file, so a revocation takes effect within a second. An unknown token
// makes it look every time, so a token created a moment ago works at once;
// a look is one stat, far cheaper than the request that asked for it.
const tokenRecheck = time.Second

// TokenAuth is the Authenticator of `agenttrail serve`: bearer tokens from a
// TokenFile. It re-reads the file when it changes (checked by stat, at most
// every second, and on an unknown token), so `agenttrail token create` and
// `revoke` take effect on a running server. Safe for concurrent use.
type TokenAuth struct {
	file      *TokenFile
	log       *slog.Logger
	onReload  atomic.Pointer[func([]TokenRecord)] // called after each load that changed something
	onRevoked atomic.Pointer[func(ids []string)]  // called after each load that ended live tokens

	set       atomic.Pointer[tokenSet]
	lastCheck atomic.Int64 // unix nanos of the last stat
	mu        sync.Mutex   // serializes reloads
	stat      tokenStamp   // of the loaded store; guarded by mu
	// failing is set while the token store cannot be read (a shared one
	// whose database is down): requests then go on with the tokens
	// loaded before, without waiting on the store, and Run keeps trying.
	failing atomic.Bool
	// lookedAt is the unix nanos at which the last successful look at the
	// store began; missMu makes the requests that miss the loaded tokens
	// share one look (see reloadOnMiss).
	lookedAt atomic.Int64
	missMu   sync.Mutex
}

// maxTokenStaleness bounds how long a node whose shared token store is
// unreachable goes on trusting the tokens it loaded before: past it, read
// and admin tokens are refused (a revocation made meanwhile on another node
// could not have reached it), while ingest tokens still record events, so
// that agents are never stopped by the trail's database being away.
var maxTokenStaleness = time.Minute // a variable for tests

type tokenSet struct {
	byID map[string]TokenRecord
}

// NewTokenAuth loads file and returns an Authenticator for it. A Server
// given it as Config.Auth, with Config.Audit set, records the token
// changes it finds in the file as audit events.
func NewTokenAuth(file *TokenFile, logger *slog.Logger) (*TokenAuth, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &TokenAuth{file: file, log: logger}
	a.set.Store(&tokenSet{})
	if err := a.reload(true); err != nil {
		return nil, err
	}
	return a, nil
}

// Authenticate implements Authenticator.
func (a *TokenAuth) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, agenttrail.Errorf(agenttrail.EUNAUTHORIZED, "a bearer token is required: Authorization: Bearer <token>")
	}
	token = strings.TrimSpace(token)
	id, ok := tokenID(token)
	if !ok {
		return Principal{}, agenttrail.Errorf(agenttrail.EUNAUTHORIZED, "the bearer token is not an agenttrail token")
	}
	a.maybeReload()
	rec, ok := a.set.Load().byID[id]
	if !ok && !a.failing.Load() {
		a.reloadOnMiss()
		rec, ok = a.set.Load().byID[id]
	}
	// The id is not secret; the comparison of the secret part is, so it is
	// made on fixed-length hashes in constant time.
	sum := sha256.Sum256([]byte(token))
	want, err := hex.DecodeString(rec.Hash)
	if !ok || err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 || rec.Revoked() {
		return Principal{}, agenttrail.Errorf(agenttrail.EUNAUTHORIZED, "the bearer token is unknown or revoked")
	}
	if rec.Expired(time.Now()) {
		return Principal{}, agenttrail.Errorf(agenttrail.EUNAUTHORIZED, "the session expired; sign in again")
	}
	if stale := time.Since(time.Unix(0, a.lookedAt.Load())); a.file.shared != nil && rec.Role != RoleIngest &&
		a.failing.Load() && stale > maxTokenStaleness {
		return Principal{}, agenttrail.Errorf(agenttrail.EUNAVAILABLE,
			"the token store has been unreachable for over %s, so a revocation may not have reached this server; only ingest tokens are accepted until it is back", maxTokenStaleness)
	}
	return Principal{Name: rec.Name, Role: rec.Role, Org: rec.Org, Expires: rec.ExpiresAt, TokenID: rec.ID}, nil
}

// reloadOnMiss looks at the store for a token that is not loaded, so a
// token created a moment ago (on another node of a cluster) works at once.
// Concurrent misses share one look: a request waits for a look that began
// after it arrived, and makes one only when none did. A flood of unknown
// tokens so costs one look at a time, not one each.
func (a *TokenAuth) reloadOnMiss() {
	arrived := time.Now().UnixNano()
	a.missMu.Lock()
	defer a.missMu.Unlock()
	if a.lookedAt.Load() >= arrived {
		return
	}
	a.logReload(a.reload(false))
}

// live reports whether the token with id is live in the tokens loaded now.
func (a *TokenAuth) live(id string) bool {
	rec, ok := a.set.Load().byID[id]
	return ok && !rec.Revoked()
}

// watchInterval is how often Run looks at the token file: well within
// tokenRecheck, so that a revocation ends its token's requests in progress
// in the same second it refuses new ones.
const watchInterval = 250 * time.Millisecond

// Run looks at the token file every watchInterval until ctx ends, and
// reloads it when it changed, so a revocation takes effect even while no
// request arrives to notice it: a Server ends the revoked token's streams,
// exports and other requests in progress at that reload. Every process
// serving the same token file (the same data directory) watches it, so a
// revocation reaches them all. It returns nil when ctx ends.
func (a *TokenAuth) Run(ctx context.Context) error {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		a.lastCheck.Store(time.Now().UnixNano())
		a.logReload(a.reload(false))
	}
}

// logReload logs a failed reload, once until one succeeds again, and sets
// failing accordingly.
func (a *TokenAuth) logReload(err error) {
	if err == nil {
		if a.failing.CompareAndSwap(true, false) {
			a.log.Info("tokens readable again", "path", a.file.Path())
		}
		return
	}
	if !a.failing.Swap(true) {
		a.log.Error("reloading tokens; keeping the ones loaded before", "path", a.file.Path(), "err", err)
	}
}

// maybeReload stats the file when the last look is older than
// tokenRecheck, and reloads it when it changed. One caller stats; the
// others go on with the tokens they have. Shared tokens are left to Run,
// so that no request waits on the store.
func (a *TokenAuth) maybeReload() {
	if a.file.shared != nil {
		return
	}
	now := time.Now().UnixNano()
	last := a.lastCheck.Load()
	if now-last < int64(tokenRecheck) || !a.lastCheck.CompareAndSwap(last, now) {
		return
	}
	a.logReload(a.reload(false))
}

// reload reads the file if it changed since the last load (or always, when
// force is set).
func (a *TokenAuth) reload(force bool) error {
	a.mu.Lock()
	began := time.Now().UnixNano()
	st, err := a.file.look()
	if err != nil {
		a.mu.Unlock()
		return err
	}
	if !force && st.same(a.stat) {
		a.lookedAt.Store(began)
		a.mu.Unlock()
		return nil
	}
	doc, st, err := a.file.read()
	if err != nil {
		a.mu.Unlock()
		return err
	}
	recs := doc.Tokens
	set := &tokenSet{byID: make(map[string]TokenRecord, len(recs))}
	for _, t := range recs {
		set.byID[t.ID] = t
	}
	ended := endedTokens(a.set.Load(), set)
	// Stored before onRevoked runs: a request that authenticated with the
	// old set and registers after the callback finds its token dead here
	// (see Server.serveAs).
	a.set.Store(set)
	a.stat = st
	a.lookedAt.Store(began)
	a.mu.Unlock()
	if fn := a.onRevoked.Load(); fn != nil && len(ended) > 0 {
		(*fn)(ended)
	}
	if !force {
		a.log.Info("tokens reloaded", "path", a.file.Path(), "tokens", len(recs))
	}
	if fn := a.onReload.Load(); fn != nil {
		(*fn)(recs)
	}
	return nil
}

// endedTokens returns the ids of the tokens live in old and not in new:
// revoked, removed from the file, or given another secret, role or org
// (an edit by hand), so that nothing authenticated as the old token goes
// on.
func endedTokens(old, new *tokenSet) []string {
	var ids []string
	for id, o := range old.byID {
		if o.Revoked() {
			continue
		}
		n, ok := new.byID[id]
		if !ok || n.Revoked() || n.Hash != o.Hash || n.Role != o.Role || n.Org != o.Org || n.Name != o.Name {
			ids = append(ids, id)
		}
	}
	return ids
}

// watchRevoked calls fn with the ids of the tokens each reload ends. fn must
// not block.
func (a *TokenAuth) watchRevoked(fn func(ids []string)) {
	a.onRevoked.Store(&fn)
}

// watch calls fn with every record now and after each reload that changed
// the file. fn must not block.
func (a *TokenAuth) watch(fn func([]TokenRecord)) {
	a.onReload.Store(&fn)
	recs := make([]TokenRecord, 0, len(a.set.Load().byID))
	for _, t := range a.set.Load().byID {
		recs = append(recs, t)
	}
	fn(recs)
}

// sameFile reports whether two stats are of the same, unchanged file.
// Changes replace the file by rename, so a new inode is the usual sign; size
// and time catch an edit in place.
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
