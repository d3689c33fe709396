package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/wire"
)

// filterFlags are the event filters as command-line flags, each repeatable
// like the query parameters they become.
type filterFlags struct {
	actorID, actorType, source, action, resourceType, resourceID stringsFlag
	result, org, project, statusCode, producerID                 stringsFlag
	since, until, q                                              string
}

func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.actorID, "actor-id", "actor id (repeatable)")
	fs.Var(&f.actorType, "actor-type", "user, agent or system (repeatable)")
	fs.Var(&f.source, "source", "source, e.g. llm-proxy (repeatable)")
	fs.Var(&f.action, "action", "action (repeatable)")
	fs.Var(&f.resourceType, "resource-type", "resource type (repeatable)")
	fs.Var(&f.resourceID, "resource-id", "resource id (repeatable)")
	fs.Var(&f.result, "result", "success, failure, denied or error (repeatable)")
	fs.Var(&f.org, "org", "org (repeatable)")
	fs.Var(&f.project, "project", "project (repeatable)")
	fs.Var(&f.statusCode, "status-code", "HTTP status code (repeatable)")
	fs.Var(&f.producerID, "producer-id", "producer id (repeatable)")
	fs.StringVar(&f.since, "since", "", "RFC 3339 time or a duration back from now (15m, 1h, 7d)")
	fs.StringVar(&f.until, "until", "", "RFC 3339 time or a duration back from now")
	fs.StringVar(&f.q, "q", "", "case-insensitive text in action, description, resource id, actor name")
}

// filter resolves the flags into a Filter, with the same parser and errors as
// the server's query parameters.
func (f *filterFlags) filter(now time.Time) (agenttrail.Filter, error) {
	filter := agenttrail.Filter{
		ActorID: f.actorID, ActorType: f.actorType, Source: f.source, Action: f.action,
		ResourceType: f.resourceType, ResourceID: f.resourceID, Result: f.result,
		Org: f.org, Project: f.project, ProducerID: f.producerID, Q: f.q,
	}
	for _, s := range f.statusCode {
		n, err := strconv.Atoi(s)
		if err != nil {
			return filter, fmt.Errorf("--status-code: %q is not a number", s)
		}
		filter.StatusCode = append(filter.StatusCode, n)
	}
	var err error
	if f.since != "" {
		if filter.Since, err = wire.ParseTime(f.since, now); err != nil {
			return filter, fmt.Errorf("--since: %w", err)
		}
	}
	if f.until != "" {
		if filter.Until, err = wire.ParseTime(f.until, now); err != nil {
			return filter, fmt.Errorf("--until: %w", err)
		}
	}
	return filter, nil
}

func runQuery(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("query", env)
	var (
		sf     serverFlags
		ff     filterFlags
		limit  = fs.Int("limit", agenttrail.DefaultLimit, "events per page (1-200)")
		sortBy = fs.String("sort", string(agenttrail.SortTimeDesc), "-time, time or seq")
		cursor = fs.String("cursor", "", "continue from this cursor")
		all    = fs.Bool("all", false, "follow cursors to the last page")
		asJSON = fs.Bool("json", false, "print NDJSON, one event per line")
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
	opts := client.QueryOptions{Sort: agenttrail.Sort(*sortBy), Limit: *limit, Cursor: *cursor}
	out := newEventPrinter(env.Stdout, *asJSON)
	for {
		page, err := c.Query(ctx, filter, opts)
		if err != nil {
			return err
		}
		if err := out.print(page.Events); err != nil {
			return err
		}
		// In seq order there is always a next cursor, for pollers; --all
		// stops at the first empty page instead of polling forever.
		if !*all || page.NextCursor == "" || len(page.Events) == 0 {
			if !*all && page.NextCursor != "" && !*asJSON {
				fmt.Fprintf(env.Stderr, "next page: --cursor %s\n", page.NextCursor)
			}
			return out.flush()
		}
		opts.Cursor = page.NextCursor
	}
}

func newClient(sf serverFlags) *client.Client {
	var opts []client.Option
	if sf.token != "" {
		opts = append(opts, client.WithToken(sf.token))
	}
	return client.New(sf.server, opts...)
}

// eventPrinter prints events as an aligned table or as NDJSON.
type eventPrinter struct {
	json bool
	enc  *json.Encoder
	tw   *tabwriter.Writer
	rows int
}

func newEventPrinter(w io.Writer, asJSON bool) *eventPrinter {
	p := &eventPrinter{json: asJSON}
	if asJSON {
		p.enc = json.NewEncoder(w)
		p.enc.SetEscapeHTML(false)
	} else {
		p.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	}
	return p
}

func (p *eventPrinter) print(events []agenttrail.Event) error {
	for i := range events {
		e := &events[i]
		if p.json {
			if err := p.enc.Encode(e); err != nil {
				return err
			}
			continue
		}
		if p.rows == 0 {
			fmt.Fprintln(p.tw, "TIME\tACTOR\tSOURCE\tACTION\tRESOURCE\tRESULT")
		}
		p.rows++
		actor := e.ActorID
		if e.ActorName != "" && e.ActorName != e.ActorID {
			actor += " (" + e.ActorName + ")"
		}
		resource := e.ResourceID
		if e.ResourceType != "" && resource != "" {
			resource = e.ResourceType + "/" + resource
		}
		fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			e.Time.UTC().Format("2006-01-02 15:04:05.000"), cell(actor, 32), e.Source,
			cell(e.Action, 60), cell(resource, 48), result(e))
	}
	return nil
}

func result(e *agenttrail.Event) string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("%s (%d)", e.Result, e.StatusCode)
	}
	return string(e.Result)
}

// cell keeps one table cell on one line and at most max runes wide.
func cell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func (p *eventPrinter) flush() error {
	if p.tw == nil {
		return nil
	}
	if p.rows == 0 {
		fmt.Fprintln(p.tw, "no events")
	}
	return p.tw.Flush()
}
