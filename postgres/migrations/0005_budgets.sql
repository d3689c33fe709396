-- Budgets: spending limits per org, named; an empty project, actor_id or
-- model is every one. Amounts in nano-dollars. Reserve locks a budget's row
-- (SELECT ... FOR UPDATE) while it decides, so servers sharing the database
-- decide one reservation at a time per budget.
CREATE TABLE budgets (
	org        text COLLATE "C" NOT NULL,
	name       text COLLATE "C" NOT NULL,
	project    text COLLATE "C" NOT NULL,
	actor_id   text COLLATE "C" NOT NULL,
	model      text COLLATE "C" NOT NULL,
	limit_nusd bigint           NOT NULL,
	period     text             NOT NULL,
	timezone   text             NOT NULL,
	warn_at    integer          NOT NULL,
	updated_at timestamptz      NOT NULL,
	updated_by text             NOT NULL,
	PRIMARY KEY (org, name)
);

-- Reservations: the worst-case cost of a call in flight (then its real cost
-- once settled) held against one budget, keyed by the id the call's event
-- will carry. A reservation stops counting when it expires or when that
-- event is stored (event_ids has it; its cost is then in the rollups).
CREATE TABLE budget_reservations (
	org         text COLLATE "C" NOT NULL,
	budget      text COLLATE "C" NOT NULL,
	id          text COLLATE "C" NOT NULL,
	amount_nusd bigint           NOT NULL,
	created_at  timestamptz      NOT NULL,
	expires_at  timestamptz      NOT NULL,
	PRIMARY KEY (org, budget, id)
);
CREATE INDEX budget_reservations_id ON budget_reservations (org, id);
