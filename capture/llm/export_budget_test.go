package llm

// CheckOnly makes cfg reserve nothing, only check spend against the limit:
// the design budgets exist to avoid, for the race test to show its
// overshoot.
func CheckOnly(cfg *BudgetConfig) { cfg.checkOnly = true }
