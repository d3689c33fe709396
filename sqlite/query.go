package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail"
)

const selectColumns = "seq, id, org, time, received_at, duration_ms, actor_type, actor_id, actor_name, source, action, " +
	"resource_type, resource_id, result, status_code, description, project, producer_id, producer_seq, " +
	"trace_id, span_id, parent_span_id, session_id, metadata, log_index"

// Query returns one page of events matching q.Filter in q.Sort order, after
// q.After. It reads one row more than the limit to know whether a next page
// exists.
func (s *Store) Query(ctx context.Context, q agenttrail.Query) (agenttrail.Page, error) {
	if q.Limit < 1 {
		return agenttrail.Page{}, agenttrail.Invalid("limit", "must be at least 1")
	}
	if err := checkFilter(&q.Filter); err != nil {
		return agenttrail.Page{}, err
	}
	query, args, err := pageSQL(&q)
	if err != nil {
		return agenttrail.Page{}, err
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return agenttrail.Page{}, formatError("query", err)
	}
	events, err := scanEvents(rows, q.Limit+1)
	if err != nil {
		return agenttrail.Page{}, formatError("query", err)
	}
	var p agenttrail.Page
	if len(events) > q.Limit {
		events = events[:q.Limit]
		p.Next = positionOf(&events[q.Limit-1])
	}
	p.Events = events
	if q.Sort == agenttrail.SortSeq && p.Next == nil {
		// A poller always gets a position to come back from.
		switch {
		case len(events) > 0:
			p.Next = positionOf(&events[len(events)-1])
		case q.After != nil:
			after := *q.After
			p.Next = &after
		default:
			p.Next = &agenttrail.Position{}
		}
	}
	return p, nil
}

// pageSQL returns the statement of one page of q, which it normalizes
// (an empty sort is -time).
func pageSQL(q *agenttrail.Query) (string, []any, error) {
	w := filterWhere(&q.Filter)
	w.timeRange(q.Filter.Since, q.Filter.Until)
	var order string
	switch q.Sort {
	case agenttrail.SortTimeDesc, "":
		q.Sort, order = agenttrail.SortTimeDesc, "time DESC, seq DESC"
		if q.After != nil {
			w.add("(time, seq) < (?, ?)", q.After.Time.UnixNano(), q.After.Seq)
		}
	case agenttrail.SortTimeAsc:
		order = "time, seq"
		if q.After != nil {
			w.add("(time, seq) > (?, ?)", q.After.Time.UnixNano(), q.After.Seq)
		}
	case agenttrail.SortSeq:
		order = "seq"
		if q.After != nil {
			w.add("seq > ?", q.After.Seq)
		}
	default:
		return "", nil, agenttrail.Invalid("sort", "must be -time, time or seq, not %q", q.Sort)
	}
	return "SELECT " + selectColumns + " FROM events WHERE " + w.String() +
		" ORDER BY " + order + " LIMIT " + strconv.Itoa(q.Limit+1), w.args, nil
}

func positionOf(e *agenttrail.Event) *agenttrail.Position {
	p := agenttrail.PositionOf(e)
	return &p
}

// Get returns the event with id among those f matches; ids that collide
// across orgs resolve to the lowest seq.
func (s *Store) Get(ctx context.Context, id string, f agenttrail.Filter) (agenttrail.Event, error) {
	if err := checkFilter(&f); err != nil {
		return agenttrail.Event{}, err
	}
	w := filterWhere(&f)
	w.timeRange(f.Since, f.Until)
	w.add("id = ?", id)
	rows, err := s.r.QueryContext(ctx, "SELECT "+selectColumns+" FROM events WHERE "+w.String()+" ORDER BY seq LIMIT 1", w.args...)
	if err != nil {
		return agenttrail.Event{}, formatError("get", err)
	}
	events, err := scanEvents(rows, 1)
	if err != nil {
		return agenttrail.Event{}, formatError("get", err)
	}
	if len(events) == 0 {
		return agenttrail.Event{}, agenttrail.Errorf(agenttrail.ENOTFOUND, "event %q not found", id)
	}
	return events[0], nil
}

// scanEvents reads every row of rows (selected with selectColumns) and
// closes them.
func scanEvents(rows *sql.Rows, capHint int) ([]agenttrail.Event, error) {
	defer rows.Close()
	out := make([]agenttrail.Event, 0, min(capHint, 256))
	for rows.Next() {
		var (
			e                 agenttrail.Event
			t, received       int64
			actorType, result string
			status            int64
			meta              []byte
			logIndex          sql.NullInt64
		)
		if err := rows.Scan(&e.Seq, &e.ID, &e.Org, &t, &received, &e.DurationMS, &actorType, &e.ActorID,
			&e.ActorName, &e.Source, &e.Action, &e.ResourceType, &e.ResourceID, &result, &status,
			&e.Description, &e.Project, &e.ProducerID, &e.ProducerSeq,
			&e.TraceID, &e.SpanID, &e.ParentSpanID, &e.SessionID, &meta, &logIndex); err != nil {
			return nil, err
		}
		e.Time = time.Unix(0, t).UTC()
		e.ReceivedAt = fromNanos(received)
		e.ActorType, e.Result, e.StatusCode = agenttrail.ActorType(actorType), agenttrail.Result(result), int(status)
		if len(meta) > 0 {
			e.Metadata = meta
		}
		if logIndex.Valid {
			e.LogIndex = &logIndex.Int64
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := rows.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
		return nil, err
	}
	return out, nil
}
