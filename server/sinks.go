package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// Sinks is the server's view of the push sinks (package sink's Set): their
// state, and the requests an admin may make of them. Methods are safe for
// concurrent use. A name no sink has is an ENOTFOUND error.
type Sinks interface {
	Status(ctx context.Context) ([]wire.SinkStatus, error)
	Replay(ctx context.Context, name string, fromSeq int64, since time.Time) (int64, error)
	DeadLetters(ctx context.Context, name string, afterID int64, limit int) ([]agenttrail.DeadLetter, error)
	RetryDeadLetters(name string) error
}

// sinksAdmin checks that the caller is an admin of every org: sinks carry
// every org's events, and their dead letters hold whole events.
func sinksAdmin(r *http.Request) error {
	if p := principalOf(r.Context()); p.Org != AllOrgs {
		return agenttrail.Errorf(agenttrail.EFORBIDDEN, "sinks deliver every org's events: only an admin of all orgs may see or steer them, not a token of org %s", p.Org)
	}
	return nil
}

// listSinks is GET /v1/sinks.
func (s *Server) listSinks(r *http.Request) (any, error) {
	for _, k := range sortedKeys(r.URL.Query()) {
		return nil, agenttrail.Invalid(k, "unknown query parameter")
	}
	if err := sinksAdmin(r); err != nil {
		return nil, err
	}
	out := wire.Sinks{Sinks: []wire.SinkStatus{}}
	if s.sinks == nil {
		return out, nil
	}
	st, err := s.sinks.Status(r.Context())
	if err != nil {
		return nil, err
	}
	out.Sinks = append(out.Sinks, st...)
	return out, nil
}

// replaySink is POST /v1/sinks/{name}/replay.
func (s *Server) replaySink(r *http.Request) (any, error) {
	if err := sinksAdmin(r); err != nil {
		return nil, err
	}
	var req wire.SinkReplay
	if err := decodeSmall(r, &req); err != nil {
		return nil, err
	}
	if (req.FromSeq > 0) == !req.Since.IsZero() {
		return nil, agenttrail.Invalid("from_seq", "give from_seq (a seq of 1 or more) or since, not both")
	}
	if s.sinks == nil {
		return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "no sink named %q", r.PathValue("name"))
	}
	cp, err := s.sinks.Replay(r.Context(), r.PathValue("name"), req.FromSeq, req.Since)
	if err != nil {
		return nil, err
	}
	s.auditSink(r, "sink.replay", fmt.Sprintf("moved sink %s back to seq %d: what follows is delivered again", r.PathValue("name"), cp))
	return wire.SinkReplayResult{Checkpoint: cp}, nil
}

// listDeadLetters is GET /v1/sinks/{name}/dead-letters?after=ID&limit=N.
func (s *Server) listDeadLetters(r *http.Request) (any, error) {
	if err := sinksAdmin(r); err != nil {
		return nil, err
	}
	v := r.URL.Query()
	for _, k := range sortedKeys(v) {
		if k != "after" && k != "limit" {
			return nil, agenttrail.Invalid(k, "unknown query parameter")
		}
	}
	after, limit := int64(0), 100
	if a := v.Get("after"); a != "" {
		var err error
		if after, err = strconv.ParseInt(a, 10, 64); err != nil || after < 0 {
			return nil, agenttrail.Invalid("after", "must be a dead letter's id, not %q", a)
		}
	}
	if l := v.Get("limit"); l != "" {
		var err error
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 1000 {
			return nil, agenttrail.Invalid("limit", "must be 1 to 1000, not %q", l)
		}
	}
	if s.sinks == nil {
		return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "no sink named %q", r.PathValue("name"))
	}
	letters, err := s.sinks.DeadLetters(r.Context(), r.PathValue("name"), after, limit)
	if err != nil {
		return nil, err
	}
	out := wire.DeadLetters{DeadLetters: []wire.DeadLetter{}}
	for _, l := range letters {
		l.Event = nil // not part of the answer
		out.DeadLetters = append(out.DeadLetters, l)
	}
	return out, nil
}

// retryDeadLetters is POST /v1/sinks/{name}/dead-letters/retry: the sink
// resends its dead letters before its next batch.
func (s *Server) retryDeadLetters(r *http.Request) (any, error) {
	if err := sinksAdmin(r); err != nil {
		return nil, err
	}
	if s.sinks == nil {
		return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "no sink named %q", r.PathValue("name"))
	}
	if err := s.sinks.RetryDeadLetters(r.PathValue("name")); err != nil {
		return nil, err
	}
	s.auditSink(r, "sink.retry", fmt.Sprintf("asked sink %s to resend its dead letters", r.PathValue("name")))
	return struct {
		Retrying bool `json:"retrying"`
	}{true}, nil
}

// auditSink records an operator's action on a sink: a replay resends part
// of the trail to a receiver, so who asked for it is part of the trail.
func (s *Server) auditSink(r *http.Request, action, description string) {
	if s.audit == nil {
		return
	}
	p := principalOf(r.Context())
	s.audit.record(agenttrail.Event{
		Time: s.now(), ActorType: agenttrail.ActorUser, ActorID: p.Name, Source: agenttrail.SourceAudit,
		Action: action, ResourceType: "sink", ResourceID: r.PathValue("name"), Result: agenttrail.ResultSuccess,
		Description: description, Org: auditOrg(p.Org),
	})
}
