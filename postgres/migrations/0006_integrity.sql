-- Integrity (package integrity): every event's leaf index in its org's
-- Merkle tree, the trees, and their signed checkpoints. log_index is NULL
-- only on events stored before this migration, until the store's first
-- start numbers them (backfill.go).
ALTER TABLE events ADD COLUMN log_index bigint;
-- Finds the events to number; empty, and never touched by an insert, once
-- they are.
CREATE INDEX events_unlogged ON events (seq) WHERE log_index IS NULL;

-- The trees' stored hashes (tlog.StoredHashes), in chunks: a row holds
-- the hashes from stored hash index first on, 32 bytes each, and size is
-- the org's tree size once the batch that wrote it committed. A batch
-- writes one row per org (per 1,024 hashes), not one per event. Not
-- partitioned, and never deleted by retention, so roots and proofs never
-- change. Stored uncompressed (random bytes do not compress), so reading
-- one hash with substring reads only the part of the value that holds it.
CREATE TABLE tree_hashes (
	org    text COLLATE "C" NOT NULL,
	first  bigint           NOT NULL,
	size   bigint           NOT NULL,
	hashes bytea            NOT NULL,
	PRIMARY KEY (org, first)
);
ALTER TABLE tree_hashes ALTER COLUMN hashes SET STORAGE EXTERNAL;

-- Signed checkpoints, kept forever.
CREATE TABLE checkpoints (
	org       text COLLATE "C" NOT NULL,
	size      bigint           NOT NULL,
	root      bytea            NOT NULL,
	signed_at timestamptz      NOT NULL,
	note      bytea            NOT NULL,
	PRIMARY KEY (org, size)
);
CREATE INDEX checkpoints_signed_at ON checkpoints (org, signed_at);
