-- The seq counter: one row, locked by every Append until it commits, so seq
-- order is commit order and seq values are never reused, even after
-- retention deleted every event.
CREATE TABLE seq_counter (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	last_seq  bigint  NOT NULL
);
INSERT INTO seq_counter (last_seq) VALUES (0);

-- Events, one partition per UTC day (events_YYYYMMDD), created by the store
-- ahead of time and on demand. The LLM usage is kept in columns so cost is
-- summed without parsing JSON; metadata keeps the client's bytes exactly
-- (bytea: no parsing on insert, and no encoding check to fail a batch).
--
-- Text columns here and below use the C collation: the store only compares
-- them for equality and groups by them, and C does that at memcmp speed
-- where a locale collation calls strcoll.
CREATE TABLE events (
	time               timestamptz      NOT NULL,
	seq                bigint           NOT NULL,
	id                 text COLLATE "C" NOT NULL,
	org                text COLLATE "C" NOT NULL,
	project            text COLLATE "C" NOT NULL,
	actor_type         text COLLATE "C" NOT NULL,
	actor_id           text COLLATE "C" NOT NULL,
	actor_name         text COLLATE "C" NOT NULL,
	source             text COLLATE "C" NOT NULL,
	action             text COLLATE "C" NOT NULL,
	resource_type      text COLLATE "C" NOT NULL,
	resource_id        text COLLATE "C" NOT NULL,
	result             text COLLATE "C" NOT NULL,
	status_code        integer          NOT NULL,
	duration_ms        double precision NOT NULL,
	description        text COLLATE "C" NOT NULL,
	metadata           bytea,
	producer_id        text COLLATE "C" NOT NULL,
	producer_seq       bigint           NOT NULL,
	received_at        timestamptz      NOT NULL,
	model              text COLLATE "C" NOT NULL,
	input_tokens       bigint           NOT NULL,
	output_tokens      bigint           NOT NULL,
	cache_read_tokens  bigint           NOT NULL,
	cache_write_tokens bigint           NOT NULL,
	reasoning_tokens   bigint           NOT NULL,
	cost_usd           double precision
) PARTITION BY RANGE (time);

-- Pages in time order, in commit order (the SIEM feed), and of one agent.
CREATE INDEX events_time_seq ON events (time, seq);
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_actor_time ON events (actor_id, time, seq);
-- Heartbeats are a small share of events; gap detection reads only them.
CREATE INDEX events_heartbeat ON events (org, actor_id, time)
	WHERE source = 'agent' AND action = 'heartbeat';

-- Dedup on (org, id). A partitioned table cannot have a unique constraint
-- without its partition key, so the ids live here, unpartitioned; the key
-- leads with id so Get finds an id across orgs with it too.
CREATE TABLE event_ids (
	id   text COLLATE "C" NOT NULL,
	org  text COLLATE "C" NOT NULL,
	seq  bigint           NOT NULL,
	time timestamptz      NOT NULL,
	PRIMARY KEY (id, org)
);
-- Ids arrive roughly in time order, so a BRIN index finds the ones
-- retention deletes, at a fraction of a B-tree's cost on every insert.
CREATE INDEX event_ids_time ON event_ids USING brin (time);

-- Rollups: per dimension, bucket start, org, project and key, the count and
-- LLM usage sums of the events; per UTC hour, and per UTC day (the sums of
-- the day's hours). Updated in the same transaction as the events. The fill
-- factor leaves room on each page for the next version of a row, so the
-- upserts every batch makes are HOT updates that touch no index.
CREATE TABLE rollups_hourly (
	dim                text COLLATE "C" NOT NULL,
	start              timestamptz      NOT NULL,
	org                text COLLATE "C" NOT NULL,
	project            text COLLATE "C" NOT NULL,
	key                text COLLATE "C" NOT NULL,
	count              bigint           NOT NULL,
	input_tokens       bigint           NOT NULL,
	output_tokens      bigint           NOT NULL,
	cache_read_tokens  bigint           NOT NULL,
	cache_write_tokens bigint           NOT NULL,
	reasoning_tokens   bigint           NOT NULL,
	cost_usd           double precision NOT NULL,
	PRIMARY KEY (dim, start, org, project, key)
) WITH (fillfactor = 80);

CREATE TABLE rollups_daily (LIKE rollups_hourly INCLUDING ALL) WITH (fillfactor = 80);
