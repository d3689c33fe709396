-- Gap detection reads each producer's heartbeats and its clean stop, in
-- producer and time order.
DROP INDEX events_heartbeat;
CREATE INDEX events_heartbeat ON events (org, actor_id, producer_id, time)
	WHERE source = 'agent' AND action IN ('heartbeat', 'stop');
