package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // budgets name IANA zones; the binary must know them on hosts without zoneinfo

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// runBudget manages spending limits over the API (an admin token for set
// and rm, a read token for list and status):
//
//	agenttrail budget set NAME --org O [--project P] [--actor-id A] [--model M]
//	                     --limit-usd 50 --period day|week|month|total [--timezone Europe/Berlin] [--warn-at 80%]
//	agenttrail budget list|status [--org O] [--json]
//	agenttrail budget rm NAME [--org O]
func runBudget(ctx context.Context, args []string, env *Env) error {
	return runSubcommand("budget", args, env, []subcommand{
		{"set", "NAME  create or replace a budget: --limit-usd N --period day|week|month|total [--org O] [--project P] [--actor-id A] [--model M] [--timezone Z] [--warn-at 80%]",
			func(args []string) error { return budgetSet(ctx, args, env) }},
		{"list", "list the budgets", func(args []string) error { return budgetList(ctx, "list", args, env) }},
		{"status", "each budget in its current period: spent, reserved, remaining, reset time",
			func(args []string) error { return budgetList(ctx, "status", args, env) }},
		{"rm", "NAME  delete a budget", func(args []string) error { return budgetRm(ctx, args, env) }},
	})
}

// parseNamed parses args whose one positional argument, the budget's name,
// may come before, between or after the flags.
func parseNamed(fs *flag.FlagSet, args []string) (string, error) {
	var name string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		if name != "" {
			fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
			return "", errUsage
		}
		name, args = fs.Arg(0), fs.Args()[1:]
	}
	if name == "" {
		fmt.Fprintln(fs.Output(), "the budget's NAME is required")
		return "", errUsage
	}
	return name, nil
}

func budgetSet(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("budget set", env)
	var sf serverFlags
	sf.register(fs, env)
	var req wire.BudgetRequest
	fs.StringVar(&req.Org, "org", "", "the budget's org (default: the token's)")
	fs.StringVar(&req.Project, "project", "", "count only this project's calls (default: every project)")
	fs.StringVar(&req.ActorID, "actor-id", "", "count only this actor's calls (default: every actor)")
	fs.StringVar(&req.Model, "model", "", "count only calls to this model (default: every model)")
	fs.Float64Var(&req.LimitUSD, "limit-usd", 0, "the limit in US dollars, e.g. 50 or 0.10 (required)")
	fs.StringVar(&req.Period, "period", "", "day, week (from Monday), month or total (never resets) (required)")
	fs.StringVar(&req.Timezone, "timezone", "UTC", "IANA time zone the periods follow, e.g. Europe/Berlin")
	warn := fs.String("warn-at", "", "record a budget.warning audit event once a period when this share of the limit is used, e.g. 80%")
	name, err := parseNamed(fs, args)
	if err != nil {
		return err
	}
	if req.LimitUSD <= 0 || req.Period == "" {
		fmt.Fprintln(env.Stderr, "--limit-usd (more than 0) and --period are required")
		return errUsage
	}
	if _, err := time.LoadLocation(req.Timezone); err != nil {
		fmt.Fprintf(env.Stderr, "--timezone: %q is not an IANA time zone\n", req.Timezone)
		return errUsage
	}
	if *warn != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(*warn, "%"))
		if err != nil || n < 0 || n > 100 {
			fmt.Fprintf(env.Stderr, "--warn-at: want a percentage such as 80%%, not %q\n", *warn)
			return errUsage
		}
		req.WarnAt = n
	}
	b, err := newClient(sf).PutBudget(ctx, name, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "budget %s of org %s: %s per %s (%s)\n", b.Name, b.Org, dollars(b.LimitUSD), b.Period, scopeOf(b))
	return nil
}

func budgetRm(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("budget rm", env)
	var sf serverFlags
	sf.register(fs, env)
	org := fs.String("org", "", "the budget's org (default: the token's)")
	name, err := parseNamed(fs, args)
	if err != nil {
		return err
	}
	b, err := newClient(sf).DeleteBudget(ctx, *org, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "deleted budget %s of org %s\n", b.Name, b.Org)
	return nil
}

func budgetList(ctx context.Context, sub string, args []string, env *Env) error {
	fs := newFlagSet("budget "+sub, env)
	var sf serverFlags
	sf.register(fs, env)
	org := fs.String("org", "", "only this org's budgets (default: the token's, or every org for a token of all)")
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	c := newClient(sf)
	var out any
	var rows [][]string
	header := []string{"ORG", "NAME", "LIMIT", "PERIOD", "TIMEZONE", "WARN AT", "SCOPE"}
	if sub == "list" {
		l, err := c.ListBudgets(ctx, *org)
		if err != nil {
			return err
		}
		out = l
		for _, b := range l.Budgets {
			rows = append(rows, []string{b.Org, b.Name, dollars(b.LimitUSD), b.Period, b.Timezone, warnAt(b.WarnAt), scopeOf(b)})
		}
	} else {
		s, err := c.BudgetStatus(ctx, *org)
		if err != nil {
			return err
		}
		out = s
		header = []string{"ORG", "NAME", "LIMIT", "PERIOD", "SPENT", "RESERVED", "REMAINING", "RESETS"}
		for _, b := range s.Budgets {
			resets := "never"
			if !b.ResetsAt.IsZero() {
				t := b.ResetsAt
				if loc, err := time.LoadLocation(b.Timezone); err == nil {
					t = t.In(loc)
				}
				resets = t.Format("2006-01-02 15:04 MST")
			}
			rows = append(rows, []string{b.Org, b.Name, dollars(b.LimitUSD), b.Period, dollars(b.SpentUSD), dollars(b.ReservedUSD), dollars(b.RemainingUSD), resets})
		}
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	if len(rows) == 0 {
		fmt.Fprintln(env.Stdout, "no budgets")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = cell(r[i], 40)
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func dollars(usd float64) string { return agenttrail.FormatUSD(agenttrail.USDToNano(usd)) }

func warnAt(p int) string {
	if p == 0 {
		return "-"
	}
	return strconv.Itoa(p) + "%"
}

// scopeOf describes which calls count against b.
func scopeOf(b wire.Budget) string {
	var parts []string
	for _, c := range []struct{ k, v string }{{"project", b.Project}, {"actor", b.ActorID}, {"model", b.Model}} {
		if c.v != "" {
			parts = append(parts, c.k+"="+c.v)
		}
	}
	if len(parts) == 0 {
		return "every call of the org"
	}
	return strings.Join(parts, " ")
}
