package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/agenttrail/agenttrail/wire"
)

// PutBudget creates or replaces the budget name (admin).
func (c *Client) PutBudget(ctx context.Context, name string, req wire.BudgetRequest) (wire.Budget, error) {
	var out wire.Budget
	if err := c.doJSON(ctx, http.MethodPut, "/v1/budgets/"+url.PathEscape(name), nil, req, &out); err != nil {
		return out, fmt.Errorf("put budget: %w", err)
	}
	return out, nil
}

// ListBudgets lists the budgets of org ("" for the token's, or every org
// for a token of all).
func (c *Client) ListBudgets(ctx context.Context, org string) (wire.Budgets, error) {
	var out wire.Budgets
	if err := c.do(ctx, http.MethodGet, "/v1/budgets", orgQuery(org), "", nil, &out); err != nil {
		return out, fmt.Errorf("list budgets: %w", err)
	}
	return out, nil
}

// DeleteBudget deletes the budget name of org ("" for the token's).
func (c *Client) DeleteBudget(ctx context.Context, org, name string) (wire.Budget, error) {
	var out wire.Budget
	if err := c.do(ctx, http.MethodDelete, "/v1/budgets/"+url.PathEscape(name), orgQuery(org), "", nil, &out); err != nil {
		return out, fmt.Errorf("delete budget: %w", err)
	}
	return out, nil
}

// BudgetStatus returns each budget of org in its current period.
func (c *Client) BudgetStatus(ctx context.Context, org string) (wire.BudgetStatuses, error) {
	var out wire.BudgetStatuses
	if err := c.do(ctx, http.MethodGet, "/v1/budgets/status", orgQuery(org), "", nil, &out); err != nil {
		return out, fmt.Errorf("budget status: %w", err)
	}
	return out, nil
}

// Reserve asks the server to hold a call's worst-case cost against every
// budget that applies to it; see wire.ReserveRequest.
func (c *Client) Reserve(ctx context.Context, req wire.ReserveRequest) (wire.ReserveResult, error) {
	var out wire.ReserveResult
	if err := c.doJSON(ctx, http.MethodPost, "/v1/budgets/reserve", nil, req, &out); err != nil {
		return out, fmt.Errorf("reserve budget: %w", err)
	}
	return out, nil
}

// Settle replaces a reservation with the call's real cost.
func (c *Client) Settle(ctx context.Context, req wire.SettleRequest) error {
	if err := c.doJSON(ctx, http.MethodPost, "/v1/budgets/settle", nil, req, nil); err != nil {
		return fmt.Errorf("settle budget: %w", err)
	}
	return nil
}

// doJSON sends body as JSON.
func (c *Client) doJSON(ctx context.Context, method, path string, query url.Values, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.do(ctx, method, path, query, "application/json", bytes.NewReader(b), out)
}

func orgQuery(org string) url.Values {
	if org == "" {
		return nil
	}
	return url.Values{"org": {org}}
}
