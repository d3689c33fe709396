package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// TestBudgetsAPI manages budgets as admins of one org and of all, reads
// them as readers, reserves as ingest tokens, and checks that no token
// reaches another org's budgets.
func TestBudgetsAPI(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	kol, _ := time.LoadLocation("Asia/Kolkata")
	se.clock.Set(time.Date(2026, 3, 5, 23, 0, 0, 0, kol)) // one hour before a Kolkata midnight
	call := func(as, method, path string, body any, want int) []byte {
		t.Helper()
		b, _ := json.Marshal(body)
		if body == nil {
			b = nil
		}
		r := se.do(t, method, path, se.as(as), b)
		if r.status != want {
			t.Fatalf("%s %s as %s = %d, want %d: %s", method, path, as, r.status, want, r.body)
		}
		return r.body
	}
	problemField := func(b []byte) string {
		var p wire.Problem
		_ = json.Unmarshal(b, &p)
		return p.Field
	}

	call("acme-admin", "PUT", "/v1/budgets/daily", wire.BudgetRequest{LimitUSD: 50, Period: "day", Timezone: "Asia/Kolkata", WarnAt: 80}, 200)
	call("acme-admin", "PUT", "/v1/budgets/x", wire.BudgetRequest{Org: "globex", LimitUSD: 1, Period: "day"}, 403)
	call("acme-read", "PUT", "/v1/budgets/x", wire.BudgetRequest{LimitUSD: 1, Period: "day"}, 403)
	call("acme-ingest", "GET", "/v1/budgets/status", nil, 403)
	call("root", "PUT", "/v1/budgets/cap", wire.BudgetRequest{Org: "globex", LimitUSD: 0.1, Period: "total"}, 200)
	for field, req := range map[string]wire.BudgetRequest{
		"limit_usd": {LimitUSD: -1, Period: "day"},
		"period":    {LimitUSD: 1, Period: "fortnight"},
		"timezone":  {LimitUSD: 1, Period: "day", Timezone: "Nowhere/City"},
		"warn_at":   {LimitUSD: 1, Period: "day", WarnAt: 150},
	} {
		if f := problemField(call("acme-admin", "PUT", "/v1/budgets/bad", req, 400)); f != field {
			t.Errorf("PUT with a bad %s: problem names %q", field, f)
		}
	}
	if f := problemField(call("acme-admin", "PUT", "/v1/budgets/status", wire.BudgetRequest{LimitUSD: 1, Period: "day"}, 400)); f != "name" {
		t.Errorf("PUT /v1/budgets/status: problem names %q, want name", f)
	}

	var list wire.Budgets
	json.Unmarshal(call("acme-read", "GET", "/v1/budgets", nil, 200), &list)
	if len(list.Budgets) != 1 || list.Budgets[0].Name != "daily" || list.Budgets[0].LimitUSD != 50 {
		t.Fatalf("acme-read GET /v1/budgets = %+v, want acme's one budget", list)
	}
	json.Unmarshal(call("acme-read", "GET", "/v1/budgets?org=globex", nil, 200), &list)
	if len(list.Budgets) != 0 {
		t.Fatalf("acme-read GET /v1/budgets?org=globex = %+v, want nothing", list)
	}
	call("acme-read", "GET", "/v1/budgets/cap?org=globex", nil, 404)
	call("acme-admin", "DELETE", "/v1/budgets/cap?org=globex", nil, 403)
	json.Unmarshal(call("root", "GET", "/v1/budgets", nil, 200), &list)
	if len(list.Budgets) != 2 {
		t.Fatalf("root GET /v1/budgets = %+v, want both orgs' budgets", list)
	}

	// An acme ingest token cannot reserve against globex's budget.
	call("acme-ingest", "POST", "/v1/budgets/reserve", wire.ReserveRequest{ID: "c0", Org: "globex", AmountUSD: 1, TTLSeconds: 60}, 403)
	call("acme-ingest", "POST", "/v1/budgets/settle", wire.SettleRequest{ID: "c0", Org: "globex"}, 403)
	reserve := func(as, id string, usd float64) wire.ReserveResult {
		t.Helper()
		var res wire.ReserveResult
		json.Unmarshal(call(as, "POST", "/v1/budgets/reserve", wire.ReserveRequest{ID: id, ActorID: "bot", Model: "gpt-4o", AmountUSD: usd, TTLSeconds: 600}, 200), &res)
		return res
	}
	if r := reserve("acme-ingest", "c1", 39.99); !r.Allowed || len(r.Budgets) != 1 {
		t.Fatalf("reserve $39.99 of $50 = %+v", r)
	}
	if r := reserve("acme-ingest", "c2", 10.01); !r.Allowed {
		t.Fatalf("reserve $10.01 more (to exactly $50) = %+v", r)
	}
	r := reserve("acme-ingest", "c3", 0.01)
	if r.Allowed || r.Denied == nil || r.Denied.Name != "daily" || r.RetryAfterSeconds != 3600 {
		t.Fatalf("reserve past the limit = %+v, want denied by daily, retry after 3600 s", r)
	}
	if r := reserve("globex-ingest", "g1", 0.2); r.Allowed || r.RetryAfterSeconds != 0 {
		t.Fatalf("reserve $0.20 of globex's $0.10 total = %+v, want denied, no retry time", r)
	}
	call("acme-ingest", "POST", "/v1/budgets/settle", wire.SettleRequest{ID: "c2", CostUSD: 0.01}, 200)
	// A draw holds for its call: its id must be one an event could carry,
	// and what it took a dollar amount in range.
	for _, bad := range []struct {
		req   wire.SettleRequest
		field string
	}{
		{wire.SettleRequest{ID: strings.Repeat("x", 4096), Allowance: "a1", CostUSD: 0.01, TakenUSD: 0.01}, "id"},
		{wire.SettleRequest{ID: "c4", Allowance: "a1", CostUSD: 0.01, TakenUSD: -1}, "taken_usd"},
	} {
		body := call("acme-ingest", "POST", "/v1/budgets/settle", bad.req, 400)
		if !strings.Contains(string(body), bad.field) {
			t.Errorf("draw with a bad %s answered %s, want the field named", bad.field, body)
		}
	}

	var st wire.BudgetStatuses
	json.Unmarshal(call("acme-read", "GET", "/v1/budgets/status", nil, 200), &st)
	if len(st.Budgets) != 1 {
		t.Fatalf("status = %+v", st)
	}
	if b := st.Budgets[0]; b.ReservedUSD != 40 || b.SpentUSD != 0 || b.RemainingUSD != 10 ||
		!b.ResetsAt.Equal(time.Date(2026, 3, 6, 0, 0, 0, 0, kol)) {
		t.Fatalf("status after settling c2 to $0.01 = %+v, want $40.00 reserved, $10.00 left, reset at Kolkata midnight", b)
	}
	// At Kolkata midnight the day budget starts again from nothing; the
	// total budget of globex a month later still refuses.
	se.clock.Set(time.Date(2026, 3, 6, 0, 0, 0, 0, kol))
	if r := reserve("acme-ingest", "c4", 49.99); !r.Allowed || r.Budgets[0].ReservedUSD != 0 || r.Budgets[0].SpentUSD != 0 {
		t.Fatalf("reserve $49.99 at the next Kolkata midnight = %+v, want allowed in a fresh period", r)
	}
	se.clock.Set(time.Date(2026, 4, 6, 0, 0, 0, 0, kol))
	if r := reserve("globex-ingest", "g3", 0.2); r.Allowed {
		t.Fatalf("a month later, reserve $0.20 of globex's $0.10 total = allowed: a total budget reset")
	}
	call("acme-admin", "DELETE", "/v1/budgets/daily", nil, 200)
	call("acme-admin", "DELETE", "/v1/budgets/daily", nil, 404)

	// Every change and each alert is an audit event, alerts once a period
	// (the day budget warned in two periods).
	reserve("globex-ingest", "g2", 0.2)
	waitFor(t, func() bool {
		p, err := se.store.Query(t.Context(), agenttrail.Query{Filter: agenttrail.Filter{Source: []string{"audit"}, Action: []string{"budget.set", "budget.delete", "budget.warning", "budget.exhausted"}}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, e := range p.Events {
			n[e.Org+" "+e.Action]++
		}
		return n["acme budget.set"] == 1 && n["globex budget.set"] == 1 && n["acme budget.delete"] == 1 &&
			n["acme budget.warning"] == 2 && n["acme budget.exhausted"] == 1 && n["globex budget.exhausted"] == 1
	})
}
