package postgres

import (
	"context"
	"strconv"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5"
)

// selectColumns are the events columns an Event is read from; the LLM
// columns are not among them because metadata holds the same values.
const selectColumns = `time, seq, id, org, project, actor_type, actor_id, actor_name, source, action,
	resource_type, resource_id, result, status_code, duration_ms, description, metadata,
	producer_id, producer_seq, received_at, trace_id, span_id, parent_span_id, session_id,
	log_index`

// scanEvent reads one row of selectColumns.
func scanEvent(row pgx.CollectableRow) (agenttrail.Event, error) {
	var (
		e                 agenttrail.Event
		actorType, result string
		statusCode        int32
		metadata          []byte
	)
	err := row.Scan(&e.Time, &e.Seq, &e.ID, &e.Org, &e.Project, &actorType, &e.ActorID, &e.ActorName,
		&e.Source, &e.Action, &e.ResourceType, &e.ResourceID, &result, &statusCode, &e.DurationMS,
		&e.Description, &metadata, &e.ProducerID, &e.ProducerSeq, &e.ReceivedAt,
		&e.TraceID, &e.SpanID, &e.ParentSpanID, &e.SessionID, &e.LogIndex)
	if err != nil {
		return e, err
	}
	e.Time, e.ReceivedAt = e.Time.UTC(), e.ReceivedAt.UTC()
	e.ActorType, e.Result, e.StatusCode = agenttrail.ActorType(actorType), agenttrail.Result(result), int(statusCode)
	if len(metadata) > 0 {
		e.Metadata = metadata
	}
	return e, nil
}

// Get returns the event with id among those f matches, the lowest seq first
// when ids collide across orgs. It finds the id through event_ids, whose
// time column lets PostgreSQL read only the event's day partition.
func (s *Store) Get(ctx context.Context, id string, f agenttrail.Filter) (agenttrail.Event, error) {
	if err := f.Check(); err != nil {
		return agenttrail.Event{}, err
	}
	if !storable(id) {
		return agenttrail.Event{}, agenttrail.Errorf(agenttrail.ENOTFOUND, "no event with id %q", id)
	}
	var a args
	c := append(conditions(f, &a), "(time, seq) IN (SELECT time, seq FROM event_ids WHERE id = "+a.add(id)+")")
	rows, err := s.pool.Query(ctx, "SELECT "+selectColumns+" FROM events"+whereClause(c)+" ORDER BY seq LIMIT 1", a...)
	if err != nil {
		return agenttrail.Event{}, formatError("postgres: get", err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return agenttrail.Event{}, formatError("postgres: get", err)
	}
	if len(events) == 0 {
		return agenttrail.Event{}, agenttrail.Errorf(agenttrail.ENOTFOUND, "no event with id %q", id)
	}
	return events[0], nil
}

// Query returns one page of events by keyset paging: (time, seq) for the
// time orders, seq for commit order, so every page is an index range scan
// however deep the caller pages.
func (s *Store) Query(ctx context.Context, q agenttrail.Query) (agenttrail.Page, error) {
	if err := q.Filter.Check(); err != nil {
		return agenttrail.Page{}, err
	}
	limit := q.Limit
	if limit < 1 {
		limit = agenttrail.DefaultLimit
	}
	sql, a, err := pageSQL(q, limit)
	if err != nil {
		return agenttrail.Page{}, err
	}
	rows, err := s.pool.Query(ctx, sql, a...)
	if err != nil {
		return agenttrail.Page{}, formatError("postgres: query", err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return agenttrail.Page{}, formatError("postgres: query", err)
	}
	page := agenttrail.Page{Events: events}
	more := len(events) > limit
	if more {
		page.Events = events[:limit]
	}
	switch {
	case len(page.Events) > 0 && (more || q.Sort == agenttrail.SortSeq):
		p := agenttrail.PositionOf(&page.Events[len(page.Events)-1])
		page.Next = &p
	case q.Sort == agenttrail.SortSeq && q.After != nil:
		p := *q.After
		page.Next = &p
	case q.Sort == agenttrail.SortSeq:
		page.Next = &agenttrail.Position{}
	}
	return page, nil
}

// pageSQL returns the statement of one page of q, of limit events and one
// more, which tells whether there is a next page.
func pageSQL(q agenttrail.Query, limit int) (string, args, error) {
	var a args
	c := conditions(q.Filter, &a)
	var order string
	switch q.Sort {
	case agenttrail.SortTimeDesc, "":
		order = "time DESC, seq DESC"
		if q.After != nil {
			c = append(c, "(time, seq) < ("+a.add(q.After.Time)+", "+a.add(q.After.Seq)+")")
		}
	case agenttrail.SortTimeAsc:
		order = "time, seq"
		if q.After != nil {
			c = append(c, "(time, seq) > ("+a.add(q.After.Time)+", "+a.add(q.After.Seq)+")")
		}
	case agenttrail.SortSeq:
		order = "seq"
		if q.After != nil {
			c = append(c, "seq > "+a.add(q.After.Seq))
		}
	default:
		return "", nil, agenttrail.Invalid("sort", "must be -time, time or seq, not %q", q.Sort)
	}
	return "SELECT " + selectColumns + " FROM events" + whereClause(c) +
		" ORDER BY " + order + " LIMIT " + strconv.Itoa(limit+1), a, nil
}
