package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"
)

// runGaps is `agenttrail gaps`: heartbeat gaps per agent and sequence gaps
// per producer, as two tables or as the server's JSON answer.
func runGaps(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("gaps", env)
	var (
		sf       serverFlags
		ff       filterFlags
		interval = fs.Duration("interval", 0, "heartbeat interval to judge every agent by (default: each agent's own, from its heartbeats)")
		asJSON   = fs.Bool("json", false, "print the server's JSON answer")
	)
	sf.register(fs, env)
	ff.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *interval < 0 {
		fmt.Fprintln(env.Stderr, "--interval: must not be negative")
		return errUsage
	}
	ff.setDefault("since", "24h")
	filter, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	g, err := newClient(sf).Gaps(ctx, filter, *interval)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(g)
	}
	const ts = "2006-01-02 15:04:05.000"
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "gaps from %s to %s\n\n", g.Since.UTC().Format(ts), g.Until.UTC().Format(ts))
	if len(g.Heartbeats) == 0 {
		fmt.Fprintln(tw, "no heartbeat gaps")
	} else {
		fmt.Fprintln(tw, "ORG\tACTOR\tLAST HEARTBEAT\tNEXT HEARTBEAT\tMISSED")
		for _, h := range g.Heartbeats {
			next := h.To.UTC().Format(ts)
			if h.Open {
				next = "none yet"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", cell(h.Org, 32), cell(h.ActorID, 40), h.From.UTC().Format(ts), next, h.Missed)
		}
	}
	fmt.Fprintln(tw)
	if len(g.Sequences) == 0 {
		fmt.Fprintln(tw, "no sequence gaps")
	} else {
		fmt.Fprintln(tw, "ORG\tPRODUCER\tMISSING SEQ\tEVENTS")
		for _, s := range g.Sequences {
			fmt.Fprintf(tw, "%s\t%s\t%d-%d\t%d\n", cell(s.Org, 32), cell(s.ProducerID, 40), s.From, s.To, s.To-s.From+1)
		}
	}
	return tw.Flush()
}
