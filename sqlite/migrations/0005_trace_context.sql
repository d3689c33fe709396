-- Trace context and session: '' when absent, like every optional text
-- column. One task is read by its trace or its session, so each has an
-- index in (id, time) order: a trace's page is a range of it, already in
-- time order, and ties fall to seq (the rowid, the implicit last column).
-- Most events carry neither; the indexes are partial, so those events cost
-- no index insert at all. A query uses them when it states the same
-- "<> ''" condition, which filterWhere adds.
ALTER TABLE events ADD COLUMN trace_id       TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN span_id        TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN parent_span_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN session_id     TEXT NOT NULL DEFAULT '';
CREATE INDEX events_trace ON events (trace_id, time) WHERE trace_id <> '';
CREATE INDEX events_session ON events (session_id, time) WHERE session_id <> '';
