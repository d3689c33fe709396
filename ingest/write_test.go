package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
)

// TestWriteChecksEachEvent writes a batch for a caller scoped to one org:
// the events it may not write, and the invalid ones, are rejected by index,
// the others are stored with the caller's org as their default.
func TestWriteChecksEachEvent(t *testing.T) {
	store := openStore(t)
	now := base.Add(time.Hour)
	p := ingest.New(store, ingest.Config{Now: func() time.Time { return now }})
	start(t, p)
	ev := func(org, source string, actor agenttrail.ActorType) agenttrail.Event {
		return agenttrail.Event{Time: base, ActorType: actor, ActorID: "a", Source: source, Action: "x", Result: agenttrail.ResultSuccess, Org: org}
	}
	batch := []agenttrail.Event{
		ev("", "shell", agenttrail.ActorAgent),
		ev("", "shell", "robot"),
		ev("globex", "shell", agenttrail.ActorAgent),
		ev("acme", agenttrail.SourceAudit, agenttrail.ActorSystem),
		ev("acme", "shell", agenttrail.ActorAgent),
	}
	res, err := p.Write(t.Context(), batch, ingest.Scope{DefaultOrg: "acme", Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		index int
		code  string
		field string
	}{{1, agenttrail.EINVALID, "actor_type"}, {2, agenttrail.EFORBIDDEN, "org"}, {3, agenttrail.EFORBIDDEN, "source"}}
	if len(res.Rejected) != len(want) {
		t.Fatalf("Write rejected %+v, want indexes 1, 2, 3", res.Rejected)
	}
	for i, w := range want {
		r := res.Rejected[i]
		if r.Index != w.index || agenttrail.ErrorCode(r.Err) != w.code || agenttrail.ErrorField(r.Err) != w.field {
			t.Errorf("rejection %d = %d %v, want index %d, %s naming %s", i, r.Index, r.Err, w.index, w.code, w.field)
		}
	}
	if res.Inserted != 2 || res.Accepted() != 2 {
		t.Errorf("Write = %+v, want 2 inserted", res)
	}
	page, err := store.Query(t.Context(), agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		if e.Org != "acme" || e.ID == "" || !e.ReceivedAt.Equal(now) {
			t.Errorf("stored %+v, want org acme, an id, received at %v", e, now)
		}
	}
}

// TestWriteServerEvents: only the server's own writes may record source
// "audit".
func TestWriteServerEvents(t *testing.T) {
	p := ingest.New(openStore(t), ingest.Config{})
	start(t, p)
	audit := agenttrail.Event{ActorType: agenttrail.ActorSystem, ActorID: "agenttrail-retention", Source: agenttrail.SourceAudit,
		Action: "retention.run", Result: agenttrail.ResultSuccess}
	res, err := p.Write(t.Context(), []agenttrail.Event{audit}, ingest.Scope{Server: true})
	if err != nil || res.Inserted != 1 || len(res.Rejected) != 0 {
		t.Errorf("Write(audit event, server scope) = %+v, %v; want it stored", res, err)
	}
	res, err = p.Write(t.Context(), []agenttrail.Event{audit}, ingest.Scope{})
	if err != nil || res.Inserted != 0 || len(res.Rejected) != 1 {
		t.Errorf("Write(audit event, caller scope) = %+v, %v; want it rejected", res, err)
	}
}

// TestWriteRedactsByDefault writes a secret through a pipeline configured
// without a Redactor: what is stored is redacted.
func TestWriteRedactsByDefault(t *testing.T) {
	store := openStore(t)
	p := ingest.New(store, ingest.Config{})
	start(t, p)
	secret := "ghp_" + "R4nd0mT0k3nF0rT3st1ngAbCdEfGhIjKlMn"
	e := agenttrail.Event{ActorType: agenttrail.ActorAgent, ActorID: "a", Source: "shell", Action: "git push",
		Description: "pushed with " + secret, Result: agenttrail.ResultSuccess,
		Metadata: []byte(`{"shell":{"command":"git","args":["push","https://x:` + secret + `@github.com/o/r"]}}`)}
	if _, err := p.Write(t.Context(), []agenttrail.Event{e}, ingest.Scope{}); err != nil {
		t.Fatal(err)
	}
	page, err := store.Query(t.Context(), agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 1})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("Query = %+v, %v", page, err)
	}
	got := page.Events[0]
	if strings.Contains(got.Description, secret) || strings.Contains(string(got.Metadata), secret) ||
		!strings.Contains(got.Description, "[REDACTED:github_token]") {
		t.Errorf("stored description %q, metadata %s; want the secret redacted", got.Description, got.Metadata)
	}
}
