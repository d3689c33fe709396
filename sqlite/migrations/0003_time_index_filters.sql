-- Every filter column that is short and common joins the time index, so
-- that newest-first pages filtered by org, agent, source, result or action
-- are checked inside the index and read only the rows they return. A
-- second index per filter would cost every append another B-tree insert.
DROP INDEX events_time;
CREATE INDEX events_time ON events (time, org, actor_id, source, result, action);
