package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// memDoc is a SharedDoc in memory, standing in for the cluster's table:
// what is tested here is TokenAuth's use of it. down makes every call fail
// as an unreachable database does; versions counts the looks.
type memDoc struct {
	mu       sync.Mutex
	doc      []byte
	version  int64
	down     atomic.Bool
	versions atomic.Int64
}

var errDown = errors.New("database unreachable")

func (m *memDoc) Get(context.Context) ([]byte, int64, error) {
	if m.down.Load() {
		return nil, 0, errDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc, m.version, nil
}

func (m *memDoc) Version(context.Context) (int64, error) {
	m.versions.Add(1)
	if m.down.Load() {
		return 0, errDown
	}
	time.Sleep(2 * time.Millisecond) // a round trip
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, nil
}

func (m *memDoc) Update(_ context.Context, change func([]byte) ([]byte, error)) error {
	if m.down.Load() {
		return errDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := change(m.doc)
	if err != nil {
		return err
	}
	m.doc, m.version = b, m.version+1
	return nil
}

func bearerRequest(token string) *http.Request {
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// TestSharedTokensUnknownFlood: requests with unknown tokens share their
// looks at the shared store instead of each making one, while a token
// created on another node still works at once.
func TestSharedTokensUnknownFlood(t *testing.T) {
	doc := &memDoc{}
	a, err := NewTokenAuth(NewSharedTokens(doc, "shared"), nil)
	if err != nil {
		t.Fatal(err)
	}
	bogus := "at_0123456789abcdef_" + strings.Repeat("ab", 32)
	doc.versions.Store(0)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, err := a.Authenticate(bearerRequest(bogus)); agenttrail.ErrorCode(err) != agenttrail.EUNAUTHORIZED {
				t.Errorf("unknown token: %v", err)
			}
		})
	}
	wg.Wait()
	if n := doc.versions.Load(); n > 100 {
		t.Errorf("200 concurrent unknown tokens made %d looks at the store, want them shared", n)
	}
	// Another node creates a token: the first request with it finds it.
	other := NewSharedTokens(doc, "shared")
	token, _, err := other.Create("agents", RoleIngest, "acme", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(bearerRequest(token)); err != nil || p.Org != "acme" {
		t.Fatalf("token created on another node = %+v, %v", p, err)
	}
}

// TestSharedTokensStaleness: a node cut off its shared token store goes on
// with the tokens it had, for ingest tokens indefinitely, for read and
// admin tokens only within maxTokenStaleness (a revocation may be waiting
// on the other side).
func TestSharedTokensStaleness(t *testing.T) {
	old := maxTokenStaleness
	maxTokenStaleness = 200 * time.Millisecond
	t.Cleanup(func() { maxTokenStaleness = old })
	doc := &memDoc{}
	tokens := NewSharedTokens(doc, "shared")
	ingest, _, err := tokens.Create("agents", RoleIngest, "acme", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	read, _, err := tokens.Create("soc", RoleRead, "acme", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewTokenAuth(tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc.down.Store(true)
	a.logReload(a.reload(false)) // Run's next poll fails
	for _, tok := range []string{ingest, read} {
		if _, err := a.Authenticate(bearerRequest(tok)); err != nil {
			t.Errorf("within the staleness bound: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := a.Authenticate(bearerRequest(ingest)); err != nil {
		t.Errorf("ingest token past the bound = %v, want accepted", err)
	}
	if _, err := a.Authenticate(bearerRequest(read)); agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("read token past the bound = %v, want EUNAVAILABLE saying the store is unreachable", err)
	}
	doc.down.Store(false)
	a.logReload(a.reload(false))
	if _, err := a.Authenticate(bearerRequest(read)); err != nil {
		t.Errorf("read token with the store back = %v", err)
	}
}
