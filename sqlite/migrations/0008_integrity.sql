-- Integrity (package integrity): every event's leaf index in its org's
-- Merkle tree, the trees, and their signed checkpoints. log_index is NULL
-- only on events stored before this migration, until the store's first
-- start numbers them (backfill.go); the partial index finds those and is
-- empty, and never touched by an insert, afterwards.
ALTER TABLE events ADD COLUMN log_index INTEGER;
CREATE INDEX events_unlogged ON events (seq) WHERE log_index IS NULL;

-- The trees' stored hashes (tlog.StoredHashes), in chunks: a row holds
-- the hashes from stored hash index first on, 32 bytes each, and size is
-- the org's tree size once the batch that wrote it committed. A batch
-- writes one row per org (per 1,024 hashes), not one per event. Retention
-- never deletes them, so roots and proofs never change.
CREATE TABLE tree_hashes (
	org    TEXT    NOT NULL,
	first  INTEGER NOT NULL,
	size   INTEGER NOT NULL,
	hashes BLOB    NOT NULL,
	PRIMARY KEY (org, first)
);

-- Signed checkpoints, kept forever.
CREATE TABLE checkpoints (
	org       TEXT    NOT NULL,
	size      INTEGER NOT NULL,
	root      BLOB    NOT NULL,
	signed_at INTEGER NOT NULL,
	note      BLOB    NOT NULL,
	PRIMARY KEY (org, size)
) WITHOUT ROWID;
CREATE INDEX checkpoints_signed_at ON checkpoints (org, signed_at);
