package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
)

// The trail audits itself: every read through a read route, and every token
// created or revoked, becomes an event with source "audit", recorded
// through the ingest pipeline like any other.
//
// Reads must not wait for their own record, so events go through a bounded
// channel to one actor, RunAudit, that writes them in batches; when the
// channel is full the event is dropped and counted
// (agenttrail_audit_dropped_total), as a full ingest queue drops nothing
// silently either. Audit events enter the write path directly, not over
// HTTP, so recording them is never itself a read: reading the audit events
// creates one event per read, never a loop.
const (
	auditQueue     = 4096
	auditBatch     = 512
	auditSubmitTTL = 30 * time.Second
	// ServerActor is the actor of audit events the server records on its
	// own behalf, such as the first admin token.
	ServerActor = "agenttrail-server"
)

// auditor owns the audit channel; RunAudit drains it.
type auditor struct {
	ingest Writer
	log    *slog.Logger
	now    func() time.Time

	ch       chan agenttrail.Event
	dropped  prometheus.Counter
	recorded prometheus.Counter
	failed   prometheus.Counter
}

func newAuditor(s *Server, reg prometheus.Registerer) *auditor {
	a := &auditor{
		ingest: s.ingest, log: s.log, now: s.now,
		ch:       make(chan agenttrail.Event, auditQueue),
		dropped:  newCounter("agenttrail_audit_dropped_total", "Audit events of the trail's own reads and token changes dropped because the audit queue was full."),
		recorded: newCounter("agenttrail_audit_recorded_total", "Audit events of the trail's own reads and token changes handed to the ingest pipeline."),
		failed:   newCounter("agenttrail_audit_failed_total", "Audit events the ingest pipeline refused or could not store."),
	}
	reg.MustRegister(a.dropped, a.recorded, a.failed)
	return a
}

// record queues ev without blocking.
func (a *auditor) record(ev agenttrail.Event) {
	select {
	case a.ch <- ev:
	default:
		a.dropped.Inc()
	}
}

// RunAudit writes the audit events of reads and token changes until ctx
// ends; then it writes what is queued and returns nil. Run it while the
// server serves and stop it after Shutdown returned, so the last reads are
// recorded, and before the write path stops. Without Config.Audit it only
// waits for ctx.
func (s *Server) RunAudit(ctx context.Context) error {
	if s.audit == nil {
		<-ctx.Done()
		return nil
	}
	a := s.audit
	batch := make([]agenttrail.Event, 0, auditBatch)
	for {
		select {
		case ev := <-a.ch:
			batch = append(batch[:0], ev)
		case <-ctx.Done():
			for {
				if batch = a.drain(batch[:0]); len(batch) == 0 {
					return nil
				}
				a.write(batch)
			}
		}
		a.write(a.drain(batch))
	}
}

// drain appends what is queued, up to a batch.
func (a *auditor) drain(batch []agenttrail.Event) []agenttrail.Event {
	for len(batch) < auditBatch {
		select {
		case ev := <-a.ch:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// write records batch through the write path as the server's own events.
// It does not use the caller's context: what was read is recorded even
// while the server shuts down.
func (a *auditor) write(batch []agenttrail.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), auditSubmitTTL)
	defer cancel()
	res, err := a.ingest.Write(ctx, batch, ingest.Scope{Server: true})
	for _, r := range res.Rejected {
		a.log.Error("audit event is invalid", "err", r.Err)
	}
	a.failed.Add(float64(len(res.Rejected)))
	if err != nil {
		n := len(batch) - len(res.Rejected)
		a.log.Error("recording audit events", "events", n, "err", err)
		a.failed.Add(float64(n))
		return
	}
	a.recorded.Add(float64(res.Accepted() + res.Duplicates))
}

// auditOrg is the org an audit event about p is recorded in: its own, or
// the default org for a principal of every org.
func auditOrg(org string) string {
	if org == AllOrgs || org == "" {
		return agenttrail.DefaultOrg
	}
	return org
}

// auditAction names a read route as an audit action: GET /v1/events is
// events.query, GET /v1/events/{id} events.get, GET /v1/<name>
// events.<name>.
func auditAction(path string) string {
	switch path {
	case "/v1/events":
		return "events.query"
	case "/v1/events/{id}":
		return "events.get"
	}
	name := strings.TrimPrefix(path, "/v1/")
	name = strings.NewReplacer("/", ".", "{", "", "}", "").Replace(name)
	return "events." + name
}

// auditMeta is metadata.audit of a read: the raw query parameters as the
// caller sent them (before scoping), the path, and the token's role and org.
type auditMeta struct {
	Audit struct {
		Query    url.Values `json:"query"`
		Path     string     `json:"path"`
		Role     Role       `json:"role"`
		TokenOrg string     `json:"token_org"`
	} `json:"audit"`
}

// auditRead records that p read through rt, answered with status.
func (a *auditor) auditRead(p Principal, rt route, r *http.Request, rawQuery url.Values, status int, took time.Duration) {
	var m auditMeta
	m.Audit.Query, m.Audit.Path, m.Audit.Role, m.Audit.TokenOrg = rawQuery, r.URL.Path, p.Role, p.Org
	if m.Audit.Query == nil {
		m.Audit.Query = url.Values{}
	}
	meta, err := json.Marshal(m)
	if err != nil {
		a.log.Error("encoding audit metadata", "err", err)
		return
	}
	result := agenttrail.ResultSuccess
	switch {
	case status >= 500:
		result = agenttrail.ResultError
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		result = agenttrail.ResultDenied
	case status >= 400:
		result = agenttrail.ResultFailure
	}
	a.record(agenttrail.Event{
		Time:         a.now(),
		DurationMS:   float64(took.Microseconds()) / 1000,
		ActorType:    agenttrail.ActorUser,
		ActorID:      p.Name,
		Source:       agenttrail.SourceAudit,
		Action:       auditAction(rt.path),
		ResourceType: "endpoint",
		ResourceID:   rt.method + " " + rt.path,
		Result:       result,
		StatusCode:   status,
		Metadata:     meta,
		Org:          auditOrg(p.Org),
	})
}

// auditTokens records the creation and revocation of every token in recs.
// Each change has a fixed event id, so recording the same file again (at
// every start, at every reload) stores nothing new: the ingest pipeline
// deduplicates on org and id. This is how changes made offline by
// `agenttrail token` reach the trail.
func (a *auditor) auditTokens(recs []TokenRecord) {
	for _, t := range recs {
		a.record(tokenEvent(t, "token.create", t.CreatedAt, t.CreatedBy))
		if t.Revoked() {
			a.record(tokenEvent(t, "token.revoke", t.RevokedAt, t.RevokedBy))
		}
	}
}

func tokenEvent(t TokenRecord, action string, at time.Time, by string) agenttrail.Event {
	actorType := agenttrail.ActorUser
	if by == "" {
		by, actorType = ServerActor, agenttrail.ActorSystem
	}
	meta, _ := json.Marshal(map[string]any{"audit": map[string]any{
		"token_id": t.ID, "role": t.Role, "org": t.Org,
	}})
	return agenttrail.Event{
		ID:           strings.ReplaceAll(action, ".", "-") + "-" + t.ID,
		Time:         at,
		ActorType:    actorType,
		ActorID:      by,
		Source:       agenttrail.SourceAudit,
		Action:       action,
		ResourceType: "token",
		ResourceID:   t.Name,
		Result:       agenttrail.ResultSuccess,
		Metadata:     meta,
		Org:          auditOrg(t.Org),
	}
}

// auditWriter records the read once the status is known: at the first
// write, so a stream is recorded when it starts, not when it ends; or when
// the handler returns without writing.
type auditWriter struct {
	http.ResponseWriter
	once  sync.Once
	start time.Time
	emit  func(status int, took time.Duration)
}

func (w *auditWriter) fire(status int) {
	w.once.Do(func() { w.emit(status, time.Since(w.start)) })
}

func (w *auditWriter) WriteHeader(status int) {
	if status >= 200 {
		w.fire(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	w.fire(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// FlushError lets http.ResponseController flush a stream through the
// recorder and see a failed flush; Flush is for code that asks for an
// http.Flusher.
func (w *auditWriter) FlushError() error {
	w.fire(http.StatusOK)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *auditWriter) Flush() { _ = w.FlushError() }

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
