package server

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// TestStreamCapsPerTokenAndOrg is finding 9 of the second security review:
// the stream cap was global, so one org's streams locked every other org
// out. An attacker holding acme's tokens opens streams until refused; its
// own token, then its org, is refused with 429, and globex still streams.
func TestStreamCapsPerTokenAndOrg(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	open := func(name string) *sseStream {
		t.Helper()
		return se.openStream(t, "/v1/stream", se.as(name))
	}
	refused := func(name, naming string) {
		t.Helper()
		req := se.streamStatus(t, name)
		p := problemFrom(t, "GET /v1/stream as "+name, req, http.StatusTooManyRequests)
		if !strings.Contains(p.Detail, naming) || req.header.Get("Retry-After") == "" {
			t.Errorf("GET /v1/stream as %s: detail %q, Retry-After %q; want it to name %q and a Retry-After", name, p.Detail, req.header.Get("Retry-After"), naming)
		}
	}
	var acme []*sseStream
	for range streamCaps.perToken {
		acme = append(acme, open("acme-read"))
	}
	refused("acme-read", `token "acme-read"`)
	for range streamCaps.perOrg - streamCaps.perToken {
		acme = append(acme, open("acme-admin"))
	}
	token, _, err := se.file.Create("acme-read-2", RoleRead, "acme", "tester", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	se.tokens["acme-read-2"] = token
	refused("acme-read-2", `org "acme"`)

	// Another org is not locked out, and sees its own events.
	gx := se.openStream(t, "/v1/stream?source=shell", se.as("globex-read"))
	ev := eventJSON(map[string]any{"id": "gx-live", "actor_id": "agent-gx"})
	if got := se.ingestAs(t, "globex-ingest", ev); got.Accepted != 1 {
		t.Fatalf("POST as globex-ingest = %+v", got)
	}
	if m := gx.next(t, 10*time.Second); !strings.Contains(m.data, `"gx-live"`) {
		t.Errorf("globex stream got %s, want gx-live", m.data)
	}

	// A closed stream gives its slot back.
	acme[0].close()
	waitFor(t, func() bool { return se.streamStatus(t, "acme-read").status == http.StatusOK })
}

// streamStatus opens GET /v1/stream as the named token and closes it at
// once; the body is read only when it is not a stream.
func (se *secEnv) streamStatus(t testing.TB, name string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, se.url+"/v1/stream", nil)
	req.Header = se.as(name)
	resp, err := se.client.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/stream as %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return response{status: resp.StatusCode, header: resp.Header}
	}
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// holdStore blocks the reads of the events of actor "hold" until the test
// ends, and says when one has begun: an export of them stays open.
type holdStore struct {
	agenttrail.Store
	entered chan struct{}
	release chan struct{}
}

func (h *holdStore) Query(ctx context.Context, q agenttrail.Query) (agenttrail.Page, error) {
	if slices.Contains(q.Filter.ActorID, "hold") {
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-ctx.Done():
			return agenttrail.Page{}, ctx.Err()
		}
	}
	return h.Store.Query(ctx, q)
}

// TestExportCapsPerTokenAndOrg is the sibling of finding 9 for exports,
// which were not bounded at all: acme's exports, held open, are capped per
// token and per org, and globex still exports.
func TestExportCapsPerTokenAndOrg(t *testing.T) {
	hold := &holdStore{entered: make(chan struct{}), release: make(chan struct{})}
	se := newSecEnv(t, secOptions{backend: backend{"sqlite-hold", func(t testing.TB) (agenttrail.Store, func(t testing.TB) []string) {
		st, dump := openSQLite(t)
		hold.Store = st
		return hold, dump
	}}})
	ctx, cancel := context.WithCancel(context.Background())
	var held sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		close(hold.release)
		held.Wait()
	})
	holdExport := func(name string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, se.url+"/v1/export?actor_id=hold", nil)
		req.Header = se.as(name)
		held.Go(func() {
			if resp, err := se.client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		select {
		case <-hold.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("export as %s did not start", name)
		}
	}
	for range exportCaps.perToken {
		holdExport("acme-read")
	}
	r := se.do(t, http.MethodGet, "/v1/export", se.as("acme-read"), nil)
	if p := problemFrom(t, "GET /v1/export as acme-read", r, http.StatusTooManyRequests); !strings.Contains(p.Detail, `token "acme-read"`) {
		t.Errorf("detail %q, want it to name the token", p.Detail)
	}
	for range exportCaps.perOrg - exportCaps.perToken {
		holdExport("acme-admin")
	}
	token, _, err := se.file.Create("acme-read-2", RoleRead, "acme", "tester", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	se.tokens["acme-read-2"] = token
	r = se.do(t, http.MethodGet, "/v1/export", se.as("acme-read-2"), nil)
	if p := problemFrom(t, "GET /v1/export as acme-read-2", r, http.StatusTooManyRequests); !strings.Contains(p.Detail, `org "acme"`) {
		t.Errorf("detail %q, want it to name the org", p.Detail)
	}
	if r := se.do(t, http.MethodGet, "/v1/export", se.as("globex-read"), nil); r.status != http.StatusOK {
		t.Errorf("GET /v1/export as globex-read while acme holds its cap = %d: %s", r.status, r.body)
	}
}
