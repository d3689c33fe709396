-- Day rollups: the same sums per UTC day, for the days before
-- meta.days_until. Appends write only hourly rows for the current day; once
-- a day is over the writer folds its hours into one row per key (see
-- compact.go), and from then on keeps both in step. Reading 30 days then
-- touches 30 rows per key instead of 720.
CREATE TABLE rollup_days (
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
	PRIMARY KEY (dim, day, org, project, key)
) WITHOUT ROWID;

-- Named integers of the store's own state.
CREATE TABLE meta (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

-- Hourly totals (dim 8, key '') for the existing events, which series
-- without a dimension read.
INSERT INTO rollups (dim, hour, org, project, key, count, input_tokens, output_tokens,
	cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nusd)
SELECT 8, hour, org, project, '', sum(count), sum(input_tokens), sum(output_tokens),
	sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), sum(cost_nusd)
FROM rollups WHERE dim = 4 GROUP BY hour, org, project;
