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

-- Reservations: the worst-case cost of a call in flight (then its real cost
-- once settled) held against one budget, keyed by the id the call's event
-- will carry. A reservation stops counting when it expires or when that
-- event is stored (its cost is then in the rollups).
CREATE TABLE budget_reservations (
	org         TEXT    NOT NULL,
	budget      TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	amount_nusd INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	PRIMARY KEY (org, budget, id)
) WITHOUT ROWID;
CREATE INDEX budget_reservations_id ON budget_reservations (org, id);
