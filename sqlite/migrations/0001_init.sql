-- Events: one row per stored event. seq is the rowid, assigned explicitly in
-- commit order by the single writer. Times are unix nanoseconds UTC. Empty
-- optional fields are '' or 0, not NULL, so filters compare plainly; only
-- cost_usd is NULL when the price is unknown, and metadata when absent.
CREATE TABLE events (
	seq                INTEGER PRIMARY KEY,
	id                 TEXT    NOT NULL,
	org                TEXT    NOT NULL,
	time               INTEGER NOT NULL,
	received_at        INTEGER NOT NULL,
	duration_ms        REAL    NOT NULL DEFAULT 0,
	actor_type         TEXT    NOT NULL,
	actor_id           TEXT    NOT NULL,
	actor_name         TEXT    NOT NULL DEFAULT '',
	source             TEXT    NOT NULL,
	action             TEXT    NOT NULL,
	resource_type      TEXT    NOT NULL DEFAULT '',
	resource_id        TEXT    NOT NULL DEFAULT '',
	result             TEXT    NOT NULL,
	status_code        INTEGER NOT NULL DEFAULT 0,
	description        TEXT    NOT NULL DEFAULT '',
	project            TEXT    NOT NULL DEFAULT '',
	producer_id        TEXT    NOT NULL DEFAULT '',
	producer_seq       INTEGER NOT NULL DEFAULT 0,
	model              TEXT    NOT NULL DEFAULT '',
	input_tokens       INTEGER NOT NULL DEFAULT 0,
	output_tokens      INTEGER NOT NULL DEFAULT 0,
	cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
	cache_write_tokens INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
	cost_usd           REAL,
	metadata           TEXT
);

-- Deduplication on (org, id). id leads so that Get, which looks an id up
-- across the orgs a caller may see, uses the same index.
CREATE UNIQUE INDEX events_id_org ON events (id, org);

-- The default page (newest first), every time range, retention. The rowid
-- (seq) is the implicit last column, so "ORDER BY time, seq" walks it.
-- actor_id rides along so that one agent's recent activity, the most common
-- investigation query, is filtered inside the index without reading rows;
-- one index instead of a second (actor_id, time) one keeps appends cheap.
CREATE INDEX events_time ON events (time, actor_id);

-- Rollups: per dimension, hour and scope, the count and LLM usage sums of
-- the events whose value of the dimension is key. Kept in the transaction
-- that appends (or deletes) the events. hour is the unix nanosecond start of
-- the UTC hour; dim a small code (see rollup.go); cost in nano-dollars so that
-- adding and subtracting stays exact.
CREATE TABLE rollups (
	dim                INTEGER NOT NULL,
	hour               INTEGER NOT NULL,
	org                TEXT    NOT NULL,
	project            TEXT    NOT NULL,
	key                TEXT    NOT NULL,
	count              INTEGER NOT NULL,
	input_tokens       INTEGER NOT NULL,
	output_tokens      INTEGER NOT NULL,
	cache_read_tokens  INTEGER NOT NULL,
	cache_write_tokens INTEGER NOT NULL,
	reasoning_tokens   INTEGER NOT NULL,
	cost_nusd          INTEGER NOT NULL,
	PRIMARY KEY (dim, hour, org, project, key)
) WITHOUT ROWID;
