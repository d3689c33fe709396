package llm

// CheckOnly makes cfg reserve nothing, only check spend against the limit:
// the design budgets exist to avoid, for the race test to show its
// overshoot.
func CheckOnly(cfg *BudgetConfig) { cfg.checkOnly = true }

// AllowancesHeld returns how many scopes hold an allowance the proxy may
// admit calls against, for tests to wait on.
func (p *Proxy) AllowancesHeld() int {
	if p.budget == nil {
		return 0
	}
	as := &p.budget.allowances
	as.mu.Lock()
	defer as.mu.Unlock()
	n := 0
	for _, s := range as.scopes {
		if s.cur != nil && !s.cur.retired {
			n++
		}
	}
	return n
}
