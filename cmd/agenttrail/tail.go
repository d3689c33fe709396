package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/agenttrail/agenttrail"
)

// runTail is `agenttrail tail`: new events as they are committed, one line
// each, until interrupted. With --since it first prints the matches since
// then; with --after-seq it resumes after an event seen before.
func runTail(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("tail", env)
	var (
		sf       serverFlags
		ff       filterFlags
		asJSON   = fs.Bool("json", false, "print NDJSON, one event per line")
		afterSeq = fs.Int64("after-seq", 0, "resume after the event with this seq")
	)
	sf.register(fs, env)
	ff.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	filter, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	c := newClient(sf)
	var print func(e *agenttrail.Event) error
	if *asJSON {
		p := newEventPrinter(env.Stdout, true, nil)
		print = func(e *agenttrail.Event) error { return p.print([]agenttrail.Event{*e}) }
	} else {
		p := &tailPrinter{w: env.Stdout}
		print = p.print
	}
	err = c.Stream(ctx, filter, *afterSeq, func(e agenttrail.Event) error { return print(&e) })
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: the way tail ends
	}
	return err
}

// tailPrinter prints the table of `agenttrail query` one row at a time:
// rows are printed as they arrive, so the columns have fixed widths
// instead of being aligned over the whole output.
type tailPrinter struct {
	w      io.Writer
	header bool
}

const tailRow = "%-23s  %-24s  %-13s  %-48s  %-32s  %s\n"

func (p *tailPrinter) print(e *agenttrail.Event) error {
	if !p.header {
		p.header = true
		if _, err := fmt.Fprintf(p.w, tailRow, "TIME", "ACTOR", "SOURCE", "ACTION", "RESOURCE", "RESULT"); err != nil {
			return err
		}
	}
	actor := e.ActorID
	if e.ActorName != "" && e.ActorName != e.ActorID {
		actor += " (" + e.ActorName + ")"
	}
	resource := e.ResourceID
	if e.ResourceType != "" && resource != "" {
		resource = e.ResourceType + "/" + resource
	}
	_, err := fmt.Fprintf(p.w, tailRow, e.Time.UTC().Format("2006-01-02 15:04:05.000"), cell(actor, 24),
		cell(e.Source, 13), cell(e.Action, 48), cell(resource, 32), result(e))
	return err
}
