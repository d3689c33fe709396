package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// Budgets (docs/architecture.md, "Budgets"): admins manage them, readers see
// their state, and the LLM proxy reserves a call's worst case before it and
// settles the real cost after it. Every decision is the store's Reserve, one
// transaction, so servers sharing a database decide as one.

// budgetStore returns the store's budgets, or an error when the store keeps
// none.
func (s *Server) budgetStore() (agenttrail.Budgets, error) {
	if s.budgets == nil {
		return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "this server's store keeps no budgets")
	}
	return s.budgets, nil
}

// budgetScope starts a budget route: the store's budgets and the one org
// the request is about (budgetOrg).
func (s *Server) budgetScope(r *http.Request, all bool) (agenttrail.Budgets, string, error) {
	bs, err := s.budgetStore()
	if err != nil {
		return nil, "", err
	}
	org, err := budgetOrg(r, principalOf(r.Context()), all)
	return bs, org, err
}

// budgetOrg returns the one org a budget request is about: the org query
// parameter (already scoped to the caller for read routes), or the caller's
// own org. all says whether "" (every org) is acceptable.
func budgetOrg(r *http.Request, p Principal, all bool) (string, error) {
	v := r.URL.Query()
	for k := range v {
		if k != "org" {
			return "", agenttrail.Invalid(k, "unknown query parameter")
		}
	}
	orgs := v["org"]
	switch {
	case len(orgs) > 1:
		return "", agenttrail.Invalid("org", "give at most one org")
	case len(orgs) == 1 && orgs[0] != "":
		if p.Org != AllOrgs && orgs[0] != p.Org {
			return noOrg, nil // reads of another org find nothing
		}
		return orgs[0], nil
	case p.Org != AllOrgs:
		return p.Org, nil
	case all:
		return "", nil
	}
	return agenttrail.DefaultOrg, nil
}

// listBudgets is GET /v1/budgets.
func (s *Server) listBudgets(r *http.Request) (any, error) {
	bs, org, err := s.budgetScope(r, true)
	if err != nil {
		return nil, err
	}
	list, err := bs.ListBudgets(r.Context(), org)
	if err != nil {
		return nil, err
	}
	out := wire.Budgets{Budgets: make([]wire.Budget, 0, len(list))}
	for _, b := range list {
		out.Budgets = append(out.Budgets, wire.BudgetOf(b))
	}
	return out, nil
}

// getBudget is GET /v1/budgets/{name}.
func (s *Server) getBudget(r *http.Request) (any, error) {
	bs, org, err := s.budgetScope(r, false)
	if err != nil {
		return nil, err
	}
	list, err := bs.ListBudgets(r.Context(), org)
	if err != nil {
		return nil, err
	}
	for _, b := range list {
		if b.Name == r.PathValue("name") {
			return wire.BudgetOf(b), nil
		}
	}
	return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "no budget %q in org %s", r.PathValue("name"), org)
}

// budgetStatus is GET /v1/budgets/status.
func (s *Server) budgetStatus(r *http.Request) (any, error) {
	bs, org, err := s.budgetScope(r, true)
	if err != nil {
		return nil, err
	}
	sts, err := bs.BudgetStates(r.Context(), org, s.now())
	if err != nil {
		return nil, err
	}
	out := wire.BudgetStatuses{Budgets: make([]wire.BudgetStatus, 0, len(sts))}
	for _, st := range sts {
		out.Budgets = append(out.Budgets, wire.BudgetStatusOf(st))
	}
	return out, nil
}

// reservedNames are paths under /v1/budgets/ that are not budgets.
var reservedNames = map[string]bool{"status": true, "reserve": true, "settle": true}

// putBudget is PUT /v1/budgets/{name}: create or replace. An admin of one
// org manages that org's budgets only.
func (s *Server) putBudget(r *http.Request) (any, error) {
	bs, err := s.budgetStore()
	if err != nil {
		return nil, err
	}
	var req wire.BudgetRequest
	if err := decodeSmall(r, &req); err != nil {
		return nil, err
	}
	p := principalOf(r.Context())
	org, err := writeOrg(p, req.Org, "manage budgets")
	if err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	if reservedNames[name] {
		return nil, agenttrail.Invalid("name", "%q is reserved", name)
	}
	if !(req.LimitUSD > 0 && req.LimitUSD <= agenttrail.MaxBudgetUSD) { // NaN fails
		return nil, agenttrail.Invalid("limit_usd", "must be more than 0 and at most %d", agenttrail.MaxBudgetUSD)
	}
	b := agenttrail.Budget{
		Name: name, Org: org, Project: req.Project, ActorID: req.ActorID, Model: req.Model,
		LimitNUSD: agenttrail.USDToNano(req.LimitUSD), Period: agenttrail.Period(req.Period),
		Timezone: req.Timezone, WarnAt: req.WarnAt, UpdatedAt: s.now(), UpdatedBy: p.Name,
	}
	if b, err = bs.PutBudget(r.Context(), b); err != nil {
		return nil, err
	}
	s.auditBudget(p, "budget.set", b)
	return wire.BudgetOf(b), nil
}

// deleteBudget is DELETE /v1/budgets/{name}.
func (s *Server) deleteBudget(r *http.Request) (any, error) {
	p := principalOf(r.Context())
	bs, org, err := s.budgetScope(r, false)
	if err != nil {
		return nil, err
	}
	if org == noOrg {
		return nil, agenttrail.Errorf(agenttrail.EFORBIDDEN, "a token of org %s may manage budgets of that org only", p.Org)
	}
	b, err := bs.DeleteBudget(r.Context(), org, r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	s.auditBudget(p, "budget.delete", b)
	return wire.BudgetOf(b), nil
}

// writeOrg returns the org a write of p names (its own when org is empty),
// or EFORBIDDEN when p may not write there.
func writeOrg(p Principal, org, what string) (string, error) {
	switch {
	case org == "" && p.Org == AllOrgs:
		return agenttrail.DefaultOrg, nil
	case org == "":
		return p.Org, nil
	case p.Org != AllOrgs && org != p.Org:
		return "", &agenttrail.Error{Code: agenttrail.EFORBIDDEN, Field: "org", Message: fmt.Sprintf("a token of org %s may %s of that org only, not of %q", p.Org, what, org)}
	}
	return org, nil
}

// budgetWrite starts a reservation or settlement: the store, the body, and
// the org named in it (orgOf), which the caller must be allowed to write.
func budgetWrite[T any](s *Server, r *http.Request, orgOf func(*T) string, what string) (agenttrail.Budgets, *T, string, error) {
	bs, err := s.budgetStore()
	if err != nil {
		return nil, nil, "", err
	}
	req := new(T)
	if err := decodeSmall(r, req); err != nil {
		return nil, nil, "", err
	}
	org, err := writeOrg(principalOf(r.Context()), orgOf(req), what)
	return bs, req, org, err
}

// reserveBudget is POST /v1/budgets/reserve: the LLM proxy asks before a
// call. A token of one org reserves in that org only.
func (s *Server) reserveBudget(r *http.Request) (any, error) {
	bs, req, org, err := budgetWrite(s, r, func(q *wire.ReserveRequest) string { return q.Org }, "reserve budget")
	if err != nil {
		return nil, err
	}
	if !(req.AmountUSD >= 0 && req.AmountUSD <= agenttrail.MaxLLMCostUSD) {
		return nil, agenttrail.Invalid("amount_usd", "must be from 0 to %d", agenttrail.MaxLLMCostUSD)
	}
	if req.TTLSeconds <= 0 || req.TTLSeconds > int(agenttrail.MaxReservationTTL.Seconds()) {
		return nil, agenttrail.Invalid("ttl_seconds", "must be from 1 to %d", int(agenttrail.MaxReservationTTL.Seconds()))
	}
	rv := agenttrail.Reservation{
		ID: req.ID, Org: org, Project: req.Project, ActorID: req.ActorID, Model: req.Model,
		AmountNUSD: agenttrail.USDToNano(req.AmountUSD), TTL: time.Duration(req.TTLSeconds) * time.Second,
		Allowance: req.Allowance,
	}
	now := s.now()
	res, err := bs.Reserve(r.Context(), rv, now)
	if err != nil {
		return nil, err
	}
	out := wire.ReserveResult{Allowed: res.Allowed, Budgets: make([]wire.BudgetStatus, 0, len(res.States))}
	if res.Allowed {
		out.TTLMillis = res.TTL.Milliseconds()
	}
	for i, st := range res.States {
		out.Budgets = append(out.Budgets, wire.BudgetStatusOf(st))
		if rv.Allowance {
			// Granted only below the warning threshold, and not
			// granted is no refusal: nothing to alert.
			continue
		}
		used := st.UsedNUSD()
		if res.Allowed {
			used = agenttrail.AddSat(used, rv.AmountNUSD)
		}
		if st.Warned(used) {
			s.budgetAlerts.record(s, "budget.warning", st, used, now)
		}
		if (!res.Allowed && i == res.Denied) || used >= st.Budget.LimitNUSD {
			s.budgetAlerts.record(s, "budget.exhausted", st, used, now)
		}
	}
	if !res.Allowed {
		d := out.Budgets[res.Denied]
		out.Denied = &d
		if end := res.States[res.Denied].End; !end.IsZero() {
			out.RetryAfterSeconds = int64(math.Ceil(end.Sub(now).Seconds()))
		}
	}
	return out, nil
}

// settleBudget is POST /v1/budgets/settle.
func (s *Server) settleBudget(r *http.Request) (any, error) {
	bs, req, org, err := budgetWrite(s, r, func(q *wire.SettleRequest) string { return q.Org }, "settle budget")
	if err != nil {
		return nil, err
	}
	if req.ID == "" {
		return nil, agenttrail.Invalid("id", "is required")
	}
	if !(req.CostUSD >= 0 && req.CostUSD <= agenttrail.MaxLLMCostUSD) {
		return nil, agenttrail.Invalid("cost_usd", "must be from 0 to %d", agenttrail.MaxLLMCostUSD)
	}
	if req.Allowance == "" {
		err = bs.Settle(r.Context(), org, req.ID, agenttrail.USDToNano(req.CostUSD), s.now())
	} else if !(req.TakenUSD >= 0 && req.TakenUSD <= agenttrail.MaxLLMCostUSD) {
		return nil, agenttrail.Invalid("taken_usd", "must be from 0 to %d", agenttrail.MaxLLMCostUSD)
	} else if err = agenttrail.CheckReservationID("id", req.ID); err != nil {
		return nil, err // a draw holds for it: an id its event could carry
	} else {
		err = bs.Draw(r.Context(), org, req.Allowance, req.ID, agenttrail.USDToNano(req.TakenUSD), agenttrail.USDToNano(req.CostUSD), s.now())
	}
	if err != nil {
		return nil, err
	}
	return struct {
		Settled bool `json:"settled"`
	}{true}, nil
}

// auditBudget records a change of b by p.
func (s *Server) auditBudget(p Principal, action string, b agenttrail.Budget) {
	if s.audit == nil {
		return
	}
	meta, _ := json.Marshal(map[string]any{"audit": map[string]any{"budget": wire.BudgetOf(b)}})
	s.audit.record(agenttrail.Event{
		Time: s.now(), ActorType: agenttrail.ActorUser, ActorID: p.Name, Source: agenttrail.SourceAudit,
		Action: action, ResourceType: "budget", ResourceID: b.Name, Result: agenttrail.ResultSuccess,
		Description: fmt.Sprintf("%s %s: %s per %s", action, b.Name, agenttrail.FormatUSD(b.LimitNUSD), b.Period),
		Metadata:    meta, Org: b.Org,
	})
}

// alertSet remembers the budget alerts this process recorded, so each is
// submitted once per period. Their ids are fixed per budget, action and
// period, so servers sharing a store record each once as well: the store
// deduplicates.
type alertSet struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (a *alertSet) record(s *Server, action string, st agenttrail.BudgetState, used int64, now time.Time) {
	if s.audit == nil {
		return
	}
	b := &st.Budget
	id := fmt.Sprintf("%s-%s-%s-%d", action, b.Org, b.Name, st.Start.Unix())
	a.mu.Lock()
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	done := a.seen[id]
	a.seen[id] = true
	a.mu.Unlock()
	if done {
		return
	}
	meta, _ := json.Marshal(map[string]any{"audit": map[string]any{
		"budget": b.Name, "limit_usd": wire.USD(b.LimitNUSD), "used_usd": wire.USD(used),
		"period": b.Period, "period_start": st.Start, "warn_at": b.WarnAt,
	}})
	what := "reached its warning level"
	if action == "budget.exhausted" {
		what = "is exhausted"
	}
	s.audit.record(agenttrail.Event{
		ID: id, Time: now, ActorType: agenttrail.ActorSystem, ActorID: ServerActor, Source: agenttrail.SourceAudit,
		Action: action, ResourceType: "budget", ResourceID: b.Name, Result: agenttrail.ResultSuccess,
		Description: fmt.Sprintf("budget '%s' of %s per %s %s: %s used", b.Name, agenttrail.FormatUSD(b.LimitNUSD), b.Period, what, agenttrail.FormatUSD(used)),
		Metadata:    meta, Org: b.Org,
	})
}

// budgetRoutes are the routes of budgets.
func (s *Server) budgetRoutes() []route {
	return []route{
		{http.MethodGet, "/v1/budgets", RoleRead, s.wrap(s.listBudgets)},
		{http.MethodGet, "/v1/budgets/status", RoleRead, s.wrap(s.budgetStatus)},
		{http.MethodGet, "/v1/budgets/{name}", RoleRead, s.wrap(s.getBudget)},
		{http.MethodPut, "/v1/budgets/{name}", RoleAdmin, s.wrap(s.putBudget)},
		{http.MethodDelete, "/v1/budgets/{name}", RoleAdmin, s.wrap(s.deleteBudget)},
		{http.MethodPost, "/v1/budgets/reserve", RoleIngest, s.wrap(s.reserveBudget)},
		{http.MethodPost, "/v1/budgets/settle", RoleIngest, s.wrap(s.settleBudget)},
	}
}
