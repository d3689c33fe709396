package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/wire"
)

// TestSettleOnlyLowers: an ingest token that reserves $0 (always admitted)
// and then settles at the largest cost holds nothing, however often it
// re-settles; a real settlement lowers a reservation to the call's cost.
// Before the fix, the $0 reservation became $1,000,000 and, re-settled
// every 10 minutes, kept the org's budget shut past a day.
func TestSettleOnlyLowers(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			se := newSecEnv(t, secOptions{backend: be})
			call := func(as, method, path string, body any) []byte {
				t.Helper()
				b, _ := json.Marshal(body)
				r := se.do(t, method, path, se.as(as), b)
				if r.status != 200 {
					t.Fatalf("%s %s as %s = %d %s", method, path, as, r.status, r.body)
				}
				return r.body
			}
			reserved := func() float64 {
				t.Helper()
				var st struct {
					Budgets []wire.BudgetStatus `json:"budgets"`
				}
				if err := json.Unmarshal(call("acme-read", "GET", "/v1/budgets/status", nil), &st); err != nil || len(st.Budgets) != 1 {
					t.Fatalf("status: %v %+v", err, st)
				}
				return st.Budgets[0].ReservedUSD
			}
			call("acme-admin", "PUT", "/v1/budgets/org", wire.BudgetRequest{LimitUSD: 50, Period: "total"})

			call("acme-ingest", "POST", "/v1/budgets/reserve", wire.ReserveRequest{ID: "zero", AmountUSD: 0, TTLSeconds: 60})
			for range 10 {
				call("acme-ingest", "POST", "/v1/budgets/settle", wire.SettleRequest{ID: "zero", CostUSD: 1_000_000})
				se.clock.Set(se.clock.Now().Add(10 * time.Second))
			}
			if got := reserved(); got != 0 {
				t.Errorf("a $0 reservation settled at $1,000,000 holds $%v, want $0", got)
			}
			var res wire.ReserveResult
			if err := json.Unmarshal(call("acme-ingest", "POST", "/v1/budgets/reserve", wire.ReserveRequest{ID: "real", AmountUSD: 2, TTLSeconds: 600}), &res); err != nil || !res.Allowed {
				t.Fatalf("another call's $2 reservation: %v %+v, want it allowed", err, res)
			}
			call("acme-ingest", "POST", "/v1/budgets/settle", wire.SettleRequest{ID: "real", CostUSD: 0.25})
			call("acme-ingest", "POST", "/v1/budgets/settle", wire.SettleRequest{ID: "real", CostUSD: 40})
			if got := reserved(); got != 0.25 {
				t.Errorf("a $2 reservation settled at $0.25, then at $40, holds $%v, want $0.25", got)
			}
		})
	}
}
