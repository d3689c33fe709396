-- What every node of a cluster must share, kept in the store: the token
-- document, the cursor key, the signing key. version grows with each
-- change, so a node polls it to learn that a document changed.
CREATE TABLE shared_state (
	name    text        PRIMARY KEY,
	value   bytea       NOT NULL,
	version bigint      NOT NULL,
	updated timestamptz NOT NULL
);
