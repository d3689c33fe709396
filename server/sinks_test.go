package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// fakeSinks is one sink named "soc" that records what it was asked.
type fakeSinks struct {
	mu       sync.Mutex
	replayed []int64
	retried  int
}

func (f *fakeSinks) Status(ctx context.Context) ([]wire.SinkStatus, error) {
	return []wire.SinkStatus{{Name: "soc", Type: "syslog", Format: "cef", Checkpoint: 5, Head: 9, LagEvents: 4}}, nil
}

func (f *fakeSinks) Replay(ctx context.Context, name string, fromSeq int64, since time.Time) (int64, error) {
	if name != "soc" {
		return 0, agenttrail.Errorf(agenttrail.ENOTFOUND, "no sink named %q", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replayed = append(f.replayed, fromSeq)
	return fromSeq - 1, nil
}

func (f *fakeSinks) DeadLetters(ctx context.Context, name string, afterID int64, limit int) ([]agenttrail.DeadLetter, error) {
	if name != "soc" {
		return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "no sink named %q", name)
	}
	return []agenttrail.DeadLetter{{ID: 1, Seq: 3, EventID: "e3", Org: "acme", Reason: "refused", Event: []byte(`{"secret":"x"}`)}}, nil
}

func (f *fakeSinks) RetryDeadLetters(name string) error {
	if name != "soc" {
		return agenttrail.Errorf(agenttrail.ENOTFOUND, "no sink named %q", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retried++
	return nil
}

// TestSinksAPI: only an admin of all orgs sees or steers sinks (they carry
// every org's events); a dead letter's event body is never sent; bad
// requests name their field.
func TestSinksAPI(t *testing.T) {
	fs := &fakeSinks{}
	e := newEnv(t, options{sinks: fs, audit: true, auth: tokens{
		"root":  {Name: "root", Role: RoleAdmin, Org: AllOrgs},
		"acme":  {Name: "acme-admin", Role: RoleAdmin, Org: "acme"},
		"read":  {Name: "reader", Role: RoleRead, Org: AllOrgs},
		"write": {Name: "ingest", Role: RoleIngest, Org: AllOrgs},
	}})
	as := func(tok, method, path, body string) response {
		return e.do(t, method, path, http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}, []byte(body))
	}
	for _, tok := range []string{"acme", "read", "write"} {
		for _, req := range [][2]string{{"GET", "/v1/sinks"}, {"POST", "/v1/sinks/soc/replay"}, {"GET", "/v1/sinks/soc/dead-letters"}, {"POST", "/v1/sinks/soc/dead-letters/retry"}} {
			if r := as(tok, req[0], req[1], `{"from_seq":1}`); r.status != http.StatusForbidden {
				t.Errorf("%s %s as %s = %d, want 403", req[0], req[1], tok, r.status)
			}
		}
	}
	if r := e.get(t, "/v1/sinks"); r.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/sinks without a token = %d", r.status)
	}
	fs.mu.Lock()
	if len(fs.replayed) != 0 || fs.retried != 0 {
		t.Fatalf("refused requests reached the sinks: %+v", fs)
	}
	fs.mu.Unlock()

	var st wire.Sinks
	if r := as("root", "GET", "/v1/sinks", ""); r.status != 200 || jsonUnmarshal(r.body, &st) != nil || len(st.Sinks) != 1 || st.Sinks[0].LagEvents != 4 {
		t.Errorf("GET /v1/sinks = %d %s", r.status, r.body)
	}
	if r := as("root", "POST", "/v1/sinks/soc/replay", `{"from_seq":7}`); r.status != 200 || !strings.Contains(string(r.body), `"checkpoint":6`) {
		t.Errorf("replay = %d %s", r.status, r.body)
	}
	for body, field := range map[string]string{`{}`: "from_seq", `{"from_seq":3,"since":"2026-01-01T00:00:00Z"}`: "from_seq", `{"from":3}`: "from", `[`: "body"} {
		r := as("root", "POST", "/v1/sinks/soc/replay", body)
		var p wire.Problem
		jsonUnmarshal(r.body, &p)
		if r.status != 400 || p.Field != field {
			t.Errorf("replay %s = %d %s, want 400 naming %s", body, r.status, r.body, field)
		}
	}
	if r := as("root", "POST", "/v1/sinks/nope/replay", `{"from_seq":1}`); r.status != 404 {
		t.Errorf("replay of an unknown sink = %d", r.status)
	}
	r := as("root", "GET", "/v1/sinks/soc/dead-letters?limit=10", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"event_id":"e3"`) || strings.Contains(string(r.body), "secret") {
		t.Errorf("dead letters = %d %s", r.status, r.body)
	}
	if r := as("root", "GET", "/v1/sinks/soc/dead-letters?limit=0", ""); r.status != 400 {
		t.Errorf("dead letters limit=0 = %d", r.status)
	}
	if r := as("root", "POST", "/v1/sinks/soc/dead-letters/retry", ""); r.status != 200 {
		t.Errorf("retry = %d %s", r.status, r.body)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.replayed) != 1 || fs.replayed[0] != 7 || fs.retried != 1 {
		t.Errorf("sinks were asked %+v", fs)
	}
	fs.mu.Unlock()
	defer fs.mu.Lock()
	// Both are in the trail: who replayed which sink, who asked for a resend.
	for _, action := range []string{"sink.replay", "sink.retry"} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := as("root", "GET", "/v1/events?source=audit&action="+action, "")
			if r.status == 200 && strings.Contains(string(r.body), `"actor_id":"root"`) && strings.Contains(string(r.body), `"resource_id":"soc"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s audit event by root on sink soc: %d %s", action, r.status, r.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
