-- Push sinks: each sink's checkpoint (the seq it has delivered up to) and
-- the events its receiver refused for good.
CREATE TABLE sink_checkpoints (
	sink    TEXT    PRIMARY KEY,
	seq     INTEGER NOT NULL,
	updated INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE sink_dead_letters (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	sink     TEXT    NOT NULL,
	seq      INTEGER NOT NULL,
	event_id TEXT    NOT NULL,
	org      TEXT    NOT NULL,
	reason   TEXT    NOT NULL,
	time     INTEGER NOT NULL,
	event    BLOB    NOT NULL
);
CREATE INDEX sink_dead_letters_sink ON sink_dead_letters (sink, id);
