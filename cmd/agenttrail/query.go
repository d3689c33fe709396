package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/wire"
)

// filterFlags are the event filters as command-line flags: each is the
// query parameter of the same name (--actor-id is actor_id), repeatable
// like it, and resolved by the server's own parser, so the CLI accepts and
// refuses exactly what the API does.
type filterFlags struct {
	values url.Values
}

// filterFlagHelp is each filter flag's help, in the order -help lists them.
var filterFlagHelp = []struct{ param, help string }{
	{"actor_id", "actor id (repeatable)"},
	{"actor_type", "user, agent or system (repeatable)"},
	{"source", "source, e.g. llm-proxy (repeatable)"},
	{"action", "action (repeatable)"},
	{"resource_type", "resource type (repeatable)"},
	{"resource_id", "resource id (repeatable)"},
	{"result", "success, failure, denied or error (repeatable)"},
	{"org", "org (repeatable)"},
	{"project", "project (repeatable)"},
	{"status_code", "HTTP status code (repeatable)"},
	{"producer_id", "producer id (repeatable)"},
	{"trace_id", "W3C trace id, 32 hex digits: one task across surfaces (repeatable)"},
	{"session_id", "the agent's task or conversation id (repeatable)"},
	{"since", "RFC 3339 time or a duration back from now (15m, 1h, 7d)"},
	{"until", "RFC 3339 time or a duration back from now"},
	{"q", "case-insensitive text in action, description, resource id, actor name"},
}

func (f *filterFlags) register(fs *flag.FlagSet) {
	f.values = url.Values{}
	for _, p := range filterFlagHelp {
		fs.Func(flagName(p.param), p.help, func(s string) error {
			single := p.param == "since" || p.param == "until" || p.param == "q"
			switch {
			case single && s == "": // --since "$UNSET" means no bound, as it always did
				delete(f.values, p.param)
			case single:
				f.values.Set(p.param, s) // the last one given wins
			case s != "": // an empty value adds no alternative
				f.values[p.param] = append(f.values[p.param], s)
			}
			return nil
		})
	}
}

// setDefault gives the filter param a value when no flag set it.
func (f *filterFlags) setDefault(param, value string) {
	if _, ok := f.values[param]; !ok {
		f.values.Set(param, value)
	}
}

// flagName is the flag of query parameter param: actor_id is actor-id.
func flagName(param string) string { return strings.ReplaceAll(param, "_", "-") }

// filter resolves the flags into a Filter with the server's parser; an
// error names the flag.
func (f *filterFlags) filter(now time.Time) (agenttrail.Filter, error) {
	filter, err := wire.ParseFilter(f.values, now)
	if field := agenttrail.ErrorField(err); field != "" {
		var e *agenttrail.Error
		if errors.As(err, &e) {
			return filter, fmt.Errorf("--%s: %s", flagName(field), e.Message)
		}
	}
	return filter, err
}

func runQuery(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("query", env)
	var (
		sf         serverFlags
		ff         filterFlags
		limit      = fs.Int("limit", agenttrail.DefaultLimit, "events per page (1-200)")
		sortBy     = fs.String("sort", string(agenttrail.SortTimeDesc), "-time, time or seq")
		cursor     = fs.String("cursor", "", "continue from this cursor")
		all        = fs.Bool("all", false, "follow cursors to the last page")
		asJSON     = fs.Bool("json", false, "print NDJSON, one event per line")
		allSources = fs.Bool("all-sources", false, "also list heartbeats and the trail's own audit events, which are hidden by default")
		columns    = fs.String("columns", strings.Join(defaultColumns, ","), "table columns, comma-separated, from: "+strings.Join(columnNames(), ", "))
	)
	sf.register(fs, env)
	ff.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		// A word on its own is most likely a search: say how to ask for it.
		fmt.Fprintf(fs.Output(), "unexpected argument %q; to search for text, use --q %q\n", fs.Arg(0), strings.Join(fs.Args(), " "))
		return errUsage
	}
	cols, err := parseColumns(*columns)
	if err != nil {
		fmt.Fprintln(fs.Output(), err)
		return errUsage
	}
	filter, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	if !*allSources {
		hideBookkeeping(&filter)
	}
	c := newClient(sf)
	opts := client.QueryOptions{Sort: agenttrail.Sort(*sortBy), Limit: *limit, Cursor: *cursor}
	out := newEventPrinter(env.Stdout, *asJSON, cols)
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
			if err := out.flush(); err != nil {
				return err
			}
			if !*all && page.NextCursor != "" && len(page.Events) > 0 && !*asJSON {
				fmt.Fprintf(env.Stderr, "next page: agenttrail query [same flags] --cursor %s\n", page.NextCursor)
			}
			return nil
		}
		opts.Cursor = page.NextCursor
	}
}

// hideBookkeeping leaves out of f what the trail records about itself —
// heartbeats and its own audit events — unless f asks for them by name.
func hideBookkeeping(f *agenttrail.Filter) {
	if !slices.Contains(f.Source, agenttrail.SourceAudit) {
		f.NotSource = append(f.NotSource, agenttrail.SourceAudit)
	}
	if !slices.Contains(f.Action, agenttrail.ActionHeartbeat) {
		f.NotAction = append(f.NotAction, agenttrail.ActionHeartbeat)
	}
}

func newClient(sf serverFlags) *client.Client {
	var opts []client.Option
	if sf.token != "" {
		opts = append(opts, client.WithToken(sf.token))
	}
	return client.New(sf.server, opts...)
}

// eventPrinter prints events as an aligned table of chosen columns or as
// NDJSON.
type eventPrinter struct {
	json bool
	cols []column
	enc  *json.Encoder
	tw   *tabwriter.Writer
	rows int
}

func newEventPrinter(w io.Writer, asJSON bool, cols []column) *eventPrinter {
	p := &eventPrinter{json: asJSON, cols: cols}
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
			for j, c := range p.cols {
				if j > 0 {
					fmt.Fprint(p.tw, "\t")
				}
				fmt.Fprint(p.tw, strings.ToUpper(c.name))
			}
			fmt.Fprintln(p.tw)
		}
		p.rows++
		for j, c := range p.cols {
			if j > 0 {
				fmt.Fprint(p.tw, "\t")
			}
			fmt.Fprint(p.tw, c.value(e))
		}
		fmt.Fprintln(p.tw)
	}
	return nil
}

// column is one column of the query table.
type column struct {
	name  string
	value func(e *agenttrail.Event) string
}

// defaultColumns are the columns of `agenttrail query` without --columns.
var defaultColumns = []string{"time", "actor", "source", "action", "resource", "result", "duration", "cost"}

func allColumns() []column {
	return []column{
		{"time", func(e *agenttrail.Event) string { return e.Time.UTC().Format("2006-01-02 15:04:05.000") }},
		{"actor", func(e *agenttrail.Event) string {
			actor := e.ActorID
			if e.ActorName != "" && e.ActorName != e.ActorID {
				actor += " (" + e.ActorName + ")"
			}
			return cell(actor, 32)
		}},
		{"source", func(e *agenttrail.Event) string { return e.Source }},
		{"action", func(e *agenttrail.Event) string { return cell(e.Action, 60) }},
		{"resource", func(e *agenttrail.Event) string { return cell(resourceOf(e), 48) }},
		{"result", func(e *agenttrail.Event) string { return result(e) }},
		{"duration", durationOf},
		{"cost", costOf},
		{"tokens", func(e *agenttrail.Event) string {
			l, ok := e.LLM()
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%d/%d", l.InputTokens, l.OutputTokens)
		}},
		{"description", func(e *agenttrail.Event) string { return cell(e.Description, 80) }},
		{"org", func(e *agenttrail.Event) string { return cell(e.Org, 32) }},
		{"project", func(e *agenttrail.Event) string { return cell(e.Project, 32) }},
		{"id", func(e *agenttrail.Event) string { return e.ID }},
		{"seq", func(e *agenttrail.Event) string { return strconv.FormatInt(e.Seq, 10) }},
		{"producer", func(e *agenttrail.Event) string {
			if e.ProducerID == "" {
				return "-"
			}
			return fmt.Sprintf("%s#%d", e.ProducerID, e.ProducerSeq)
		}},
		{"trace", func(e *agenttrail.Event) string { return orDash(e.TraceID) }},
		{"span", func(e *agenttrail.Event) string { return orDash(e.SpanID) }},
		{"parent", func(e *agenttrail.Event) string { return orDash(e.ParentSpanID) }},
		{"session", func(e *agenttrail.Event) string { return orDash(cell(e.SessionID, 40)) }},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func columnNames() []string {
	var names []string
	for _, c := range allColumns() {
		names = append(names, c.name)
	}
	return names
}

// parseColumns reads --columns.
func parseColumns(s string) ([]column, error) {
	byName := map[string]column{}
	for _, c := range allColumns() {
		byName[c.name] = c
	}
	var cols []column
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		c, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("--columns: unknown column %q; choose from %s", name, strings.Join(columnNames(), ", "))
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// formatMS prints a duration in milliseconds the way people read one:
// 850ms, 1.2s, 3m05s.
func formatMS(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0fms", ms)
	case ms < 60000:
		return fmt.Sprintf("%.1fs", ms/1000)
	}
	d := time.Duration(ms * float64(time.Millisecond)).Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
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
