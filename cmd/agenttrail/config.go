package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/agenttrail/agenttrail/app"
)

// runConfig is `agenttrail config check FILE`: it reads a configuration
// file as `serve --config FILE` would and checks everything that can be
// checked without starting anything (keys, values, sinks and their secret
// files, retention rules, TLS files), then says what it would run.
func runConfig(ctx context.Context, args []string, env *Env) error {
	if len(args) == 0 || args[0] != "check" {
		fs := newFlagSet("config", env)
		fs.Usage = func() { fmt.Fprintln(env.Stderr, "usage: agenttrail config check FILE") }
		if err := parse(fs, args); err != nil {
			return err // -h: the usage, and exit 0
		}
		fs.Usage()
		return errUsage
	}
	fs := newFlagSet("config check", env)
	if err := parse(fs, nil); err != nil {
		return err
	}
	if len(args) != 2 || strings.HasPrefix(args[1], "-") {
		fmt.Fprintln(env.Stderr, "usage: agenttrail config check FILE")
		return errUsage
	}
	cfg, err := serveFlags([]string{"--config", args[1]}, env)
	if err != nil {
		return err
	}
	if err := app.Check(cfg); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: ok\n", args[1])
	fmt.Fprintf(env.Stdout, "  serve %s, data %s, store %s\n", cfg.Addr, cfg.DataDir, cfg.Store)
	for _, s := range cfg.Sinks {
		req := ""
		if s.Required {
			req = ", required by retention"
		}
		fmt.Fprintf(env.Stdout, "  sink %s: %s, format %s%s\n", s.Name, s.Type, s.Format, req)
	}
	if cfg.Retain > 0 {
		fmt.Fprintf(env.Stdout, "  retention: %s by default\n", cfg.Retain)
	}
	for _, r := range cfg.RetentionRules {
		fmt.Fprintf(env.Stdout, "  retention rule: source %v org %v project %v: keep %s\n", r.Source, r.Org, r.Project, r.Keep)
	}
	return nil
}
