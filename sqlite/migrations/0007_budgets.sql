-- Budgets: spending limits per org, named; an empty project, actor_id or
-- model is every one. Amounts in nano-dollars, times in unix nanoseconds.
CREATE TABLE budgets (
	org        TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	project    TEXT    NOT NULL,
	actor_id   TEXT    NOT NULL,
	model      TEXT    NOT NULL,
	limit_nusd INTEGER NOT NULL,
	period     TEXT    NOT NULL,
	timezone   TEXT    NOT NULL,
	warn_at    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT    NOT NULL,
	PRIMARY KEY (org, name)
) WITHOUT ROWID;

-- Reservations are held in memory (sqlite/budget.go): this store is one
-- process's, and a reservation lives minutes.
