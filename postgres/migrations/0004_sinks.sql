-- Push sinks: each sink's checkpoint (the seq it has delivered up to) and
-- the events its receiver refused for good.
CREATE TABLE sink_checkpoints (
	sink    text        PRIMARY KEY,
	seq     bigint      NOT NULL,
	updated timestamptz NOT NULL
);
CREATE TABLE sink_dead_letters (
	id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	sink     text        NOT NULL,
	seq      bigint      NOT NULL,
	event_id text        NOT NULL,
	org      text        NOT NULL,
	reason   text        NOT NULL,
	time     timestamptz NOT NULL,
	event    bytea       NOT NULL
);
CREATE INDEX sink_dead_letters_sink ON sink_dead_letters (sink, id);
