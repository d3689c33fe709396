package wire

import (
	"time"

	"github.com/agenttrail/agenttrail"
)

// BudgetRequest is the body of PUT /v1/budgets/{name}. Org defaults to the
// caller's; an empty project, actor_id or model is every one. WarnAt is a
// percentage of the limit (0: no warning).
type BudgetRequest struct {
	Org      string  `json:"org,omitempty"`
	Project  string  `json:"project,omitempty"`
	ActorID  string  `json:"actor_id,omitempty"`
	Model    string  `json:"model,omitempty"`
	LimitUSD float64 `json:"limit_usd"`
	Period   string  `json:"period"`
	Timezone string  `json:"timezone,omitempty"`
	WarnAt   int     `json:"warn_at,omitempty"`
}

// Budget is one budget as the API shows it.
type Budget struct {
	Name      string    `json:"name"`
	Org       string    `json:"org"`
	Project   string    `json:"project,omitempty"`
	ActorID   string    `json:"actor_id,omitempty"`
	Model     string    `json:"model,omitempty"`
	LimitUSD  float64   `json:"limit_usd"`
	Period    string    `json:"period"`
	Timezone  string    `json:"timezone"`
	WarnAt    int       `json:"warn_at,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Budgets is the answer of GET /v1/budgets.
type Budgets struct {
	Budgets []Budget `json:"budgets"`
}

// BudgetStatus is one budget in its current period: the stored cost
// (spent), the open reservations of calls in flight (reserved), what
// remains, and when the period started and resets (absent for a total
// budget, which never resets).
type BudgetStatus struct {
	Budget
	PeriodStart  time.Time `json:"period_start,omitzero"`
	ResetsAt     time.Time `json:"resets_at,omitzero"`
	SpentUSD     float64   `json:"spent_usd"`
	ReservedUSD  float64   `json:"reserved_usd"`
	RemainingUSD float64   `json:"remaining_usd"`
}

// BudgetStatuses is the answer of GET /v1/budgets/status.
type BudgetStatuses struct {
	Budgets []BudgetStatus `json:"budgets"`
}

// ReserveRequest is the body of POST /v1/budgets/reserve: hold AmountUSD,
// the worst-case cost of a call about to be made, against every budget that
// applies to it, for TTLSeconds at most. ID is the id the call's event will
// carry. Org defaults to the caller's.
//
// With Allowance, the proxy asks for an allowance instead: room ahead of
// calls of this org, project, actor and model, which it admits without
// asking and settles with SettleRequest.Allowance. ID is then the
// allowance's own. The trail grants one only with room to spare and no
// alert to record; one not granted is no refusal of a call.
type ReserveRequest struct {
	ID         string  `json:"id"`
	Org        string  `json:"org,omitempty"`
	Project    string  `json:"project,omitempty"`
	ActorID    string  `json:"actor_id,omitempty"`
	Model      string  `json:"model,omitempty"`
	AmountUSD  float64 `json:"amount_usd"`
	TTLSeconds int     `json:"ttl_seconds"`
	Allowance  bool    `json:"allowance,omitempty"`
}

// ReserveResult is the answer of POST /v1/budgets/reserve. When the call
// may not go ahead, Allowed is false, Denied is the budget that refused it,
// and RetryAfterSeconds says when that budget's period resets (0 for a total
// budget: never). TTLMillis is how long a reservation taken holds: an
// allowance ends with the first period of its budgets to end.
type ReserveResult struct {
	Allowed           bool           `json:"allowed"`
	Budgets           []BudgetStatus `json:"budgets"`
	Denied            *BudgetStatus  `json:"denied,omitempty"`
	RetryAfterSeconds int64          `json:"retry_after_seconds,omitempty"`
	TTLMillis         int64          `json:"ttl_ms,omitempty"`
}

// SettleRequest is the body of POST /v1/budgets/settle: the call ID
// ended and cost CostUSD. A call admitted under an allowance names it in
// Allowance, with what the call took of it in TakenUSD: the trail moves
// that out of the allowance and holds the cost for the call until its
// event is stored.
type SettleRequest struct {
	ID        string  `json:"id"`
	Org       string  `json:"org,omitempty"`
	CostUSD   float64 `json:"cost_usd"`
	Allowance string  `json:"allowance,omitempty"`
	TakenUSD  float64 `json:"taken_usd,omitempty"`
}

// BudgetOf converts a domain budget.
func BudgetOf(b agenttrail.Budget) Budget {
	return Budget{
		Name: b.Name, Org: b.Org, Project: b.Project, ActorID: b.ActorID, Model: b.Model,
		LimitUSD: USD(b.LimitNUSD), Period: string(b.Period), Timezone: b.Timezone, WarnAt: b.WarnAt,
		UpdatedAt: b.UpdatedAt, UpdatedBy: b.UpdatedBy,
	}
}

// BudgetStatusOf converts a domain budget state.
func BudgetStatusOf(st agenttrail.BudgetState) BudgetStatus {
	return BudgetStatus{
		Budget: BudgetOf(st.Budget), PeriodStart: st.Start, ResetsAt: st.End,
		SpentUSD: USD(st.SpentNUSD), ReservedUSD: USD(st.ReservedNUSD), RemainingUSD: USD(st.RemainingNUSD()),
	}
}

// USD converts nano-dollars to dollars.
func USD(nusd int64) float64 { return float64(nusd) / agenttrail.NanoUSD }
