-- source joins actor_id in the time index, so that newest-first pages
-- filtered by source (then by result or action on the rows) skip other
-- sources inside the index: a second index on (source, time) would cost
-- every append another B-tree insert (about 10% of Append, measured).
DROP INDEX events_time;
CREATE INDEX events_time ON events (time, actor_id, source);
