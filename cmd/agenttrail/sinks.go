package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agenttrail/agenttrail/wire"
)

const sinksUsage = `usage:
  agenttrail sinks [--json]                          the state of every sink
  agenttrail sinks replay NAME --since T|--from-seq N  deliver again from T or seq N on
  agenttrail sinks dead-letters NAME [--retry]       list (or resend) what the receiver refused`

// runSinks is `agenttrail sinks`: the push sinks of a server, and the two
// things an operator does to one: move its checkpoint back, and deal with
// its dead letters.
func runSinks(ctx context.Context, args []string, env *Env) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "replay":
			return runSinksReplay(ctx, args[1:], env)
		case "dead-letters":
			return runSinksDeadLetters(ctx, args[1:], env)
		}
		fmt.Fprintf(env.Stderr, "unknown sinks command %q\n%s\n", args[0], sinksUsage)
		return errUsage
	}
	fs := newFlagSet("sinks", env)
	var sf serverFlags
	sf.register(fs, env)
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := newClient(sf).Sinks(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(s)
	}
	if len(s.Sinks) == 0 {
		fmt.Fprintln(env.Stdout, "no sinks (they are configured in the file of serve --config)")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tFORMAT\tCHECKPOINT\tHEAD\tLAG\tLAG S\tDELIVERED\tRETRIED\tDEAD\tLAST SUCCESS\tLAST ERROR")
	for _, x := range s.Sinks {
		name := x.Name
		if x.Required {
			name += " (required)"
		}
		ok := "never"
		if x.LastSuccess != nil {
			ok = x.LastSuccess.Format("2006-01-02 15:04:05")
		}
		last := ""
		if x.LastError != "" && x.LastErrorAt != nil {
			last = x.LastErrorAt.Format("15:04:05 ") + cell(x.LastError, 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%s\t%s\n", name, x.Type, x.Format, x.Checkpoint, x.Head,
			x.LagEvents, x.LagSeconds, x.Delivered, x.Retried, x.DeadLetters, ok, last)
	}
	return tw.Flush()
}

// splitName takes the sink name, which comes first.
func splitName(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func runSinksReplay(ctx context.Context, args []string, env *Env) error {
	name, rest := splitName(args)
	fs := newFlagSet("sinks replay", env)
	var sf serverFlags
	sf.register(fs, env)
	since := fs.String("since", "", "deliver again every event received from this time on (RFC 3339, or a duration back from now such as 2h)")
	fromSeq := fs.Int64("from-seq", 0, "deliver again every event from this seq on")
	if err := parse(fs, rest); err != nil {
		return err
	}
	if name == "" || (*since == "") == (*fromSeq == 0) {
		fmt.Fprintln(env.Stderr, "give a sink name and one of --since or --from-seq\n"+sinksUsage)
		return errUsage
	}
	req := wire.SinkReplay{FromSeq: *fromSeq}
	if *since != "" {
		t, err := wire.ParseTime(*since, time.Now())
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		req.Since = t
	}
	cp, err := newClient(sf).ReplaySink(ctx, name, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "sink %s: checkpoint moved to %d; it delivers every event after it again\n", name, cp)
	return nil
}

func runSinksDeadLetters(ctx context.Context, args []string, env *Env) error {
	name, rest := splitName(args)
	fs := newFlagSet("sinks dead-letters", env)
	var sf serverFlags
	sf.register(fs, env)
	retry := fs.Bool("retry", false, "resend them; those the receiver takes are removed")
	asJSON := fs.Bool("json", false, "print JSON lines")
	if err := parse(fs, rest); err != nil {
		return err
	}
	if name == "" {
		fmt.Fprintln(env.Stderr, "give a sink name\n"+sinksUsage)
		return errUsage
	}
	c := newClient(sf)
	if *retry {
		if err := c.RetryDeadLetters(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "sink %s resends its dead letters before its next batch; see `agenttrail sinks` for what is left\n", name)
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tSEQ\tORG\tEVENT ID\tREFUSED AT\tREASON")
	}
	enc := json.NewEncoder(env.Stdout)
	var after int64
	n := 0
	for {
		letters, err := c.DeadLetters(ctx, name, after, 1000)
		if err != nil {
			return err
		}
		for _, l := range letters {
			n++
			if *asJSON {
				if err := enc.Encode(l); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", l.ID, l.Seq, cell(l.Org, 32), cell(l.EventID, 40), l.Time.Format("2006-01-02 15:04:05"), cell(l.Reason, 100))
		}
		if len(letters) < 1000 {
			break
		}
		after = letters[len(letters)-1].ID
	}
	if *asJSON {
		return nil
	}
	if n == 0 {
		fmt.Fprintf(env.Stdout, "sink %s has no dead letters\n", name)
		return nil
	}
	return tw.Flush()
}
