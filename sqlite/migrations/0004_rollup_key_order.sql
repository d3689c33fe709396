-- Rollup keys ordered (dim, time, key, org, project): a series by a
-- dimension groups by (time, key), which now streams in key order instead
-- of going through a sort, 2-3x faster over 30 days of hours (measured);
-- org and project are usually one value each and are checked on the rows.
CREATE TABLE rollups_new (
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
	PRIMARY KEY (dim, hour, key, org, project)
) WITHOUT ROWID;
INSERT INTO rollups_new SELECT * FROM rollups;
DROP TABLE rollups;
ALTER TABLE rollups_new RENAME TO rollups;

CREATE TABLE rollup_days_new (
	dim                INTEGER NOT NULL,
	day                INTEGER NOT NULL,
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
	PRIMARY KEY (dim, day, key, org, project)
) WITHOUT ROWID;
INSERT INTO rollup_days_new SELECT * FROM rollup_days;
DROP TABLE rollup_days;
ALTER TABLE rollup_days_new RENAME TO rollup_days;
