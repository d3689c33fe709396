-- Trace context and session: '' when absent, like every optional text
-- column (a constant default adds the columns without rewriting a row).
-- One task is read by its trace or its session, so each has an index in
-- (id, time, seq) order: a trace's page is a range of it, in page order.
-- Most events carry neither; the indexes are partial, so those events cost
-- no index insert at all. A query uses them when it states the same
-- "<> ''" condition, which conditions() adds.
ALTER TABLE events ADD COLUMN trace_id       text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN span_id        text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN parent_span_id text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN session_id     text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX events_trace ON events (trace_id, time, seq) WHERE trace_id <> '';
CREATE INDEX events_session ON events (session_id, time, seq) WHERE session_id <> '';
