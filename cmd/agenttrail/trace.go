package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
)

// maxTraceEvents bounds the events `agenttrail trace` reads of one trace; a
// trace larger than that is a loop, not a task, and is cut with a note.
const maxTraceEvents = 10000

// runTrace is `agenttrail trace TRACE_ID`: the events of one trace, across
// every surface, as a tree by parent span, with durations, cost and totals.
func runTrace(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("trace", env)
	var (
		sf     serverFlags
		asJSON = fs.Bool("json", false, "print the trace's events as NDJSON, in time order")
	)
	sf.register(fs, env)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: agenttrail trace [flags] TRACE_ID\n\nThe events of one trace (32 hex digits) as a tree by parent span.\n\n")
		fs.PrintDefaults()
	}
	// The id may come before the flags or after them.
	var ids []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		ids, rest = append(ids, fs.Arg(0)), fs.Args()[1:]
	}
	if len(ids) != 1 {
		fmt.Fprintln(fs.Output(), "want one trace id")
		fs.Usage()
		return errUsage
	}
	id := strings.ToLower(ids[0])
	if !isTraceID(id) {
		fmt.Fprintf(fs.Output(), "%q is not a trace id: want 32 hex digits\n", ids[0])
		return errUsage
	}
	events, cut, err := traceEvents(ctx, newClient(sf), id)
	if err != nil {
		return err
	}
	if *asJSON {
		for i := range events {
			if err := printJSON(env.Stdout, &events[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if len(events) == 0 {
		fmt.Fprintf(env.Stdout, "no events in trace %s\n", id)
		return nil
	}
	if err := printTrace(env.Stdout, id, events); err != nil {
		return err
	}
	if cut {
		fmt.Fprintf(env.Stderr, "the trace has more than %d events; only the first %d are shown\n", maxTraceEvents, maxTraceEvents)
	}
	return nil
}

func isTraceID(s string) bool {
	if len(s) != agenttrail.TraceIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// traceEvents reads the events of trace id in time order, at most
// maxTraceEvents of them; cut reports that there were more.
func traceEvents(ctx context.Context, c *client.Client, id string) (events []agenttrail.Event, cut bool, err error) {
	opts := client.QueryOptions{Sort: agenttrail.SortTimeAsc, Limit: agenttrail.MaxLimit}
	for {
		page, err := c.Query(ctx, agenttrail.Filter{TraceID: []string{id}}, opts)
		if err != nil {
			return nil, false, err
		}
		events = append(events, page.Events...)
		if len(events) >= maxTraceEvents {
			return events[:maxTraceEvents], true, nil
		}
		if page.NextCursor == "" || len(page.Events) == 0 {
			return events, false, nil
		}
		opts.Cursor = page.NextCursor
	}
}

// traceNode is one event of a trace and the events it caused.
type traceNode struct {
	event    *agenttrail.Event
	children []*traceNode
}

// traceTree arranges events (in time order) by parent span: an event is
// the child of the first event that carries its parent span; events that
// carry a span already carried by an earlier one are that event's siblings
// (several actions recorded within one span); events whose parent is not
// in the trace, or that have none, are roots. Every event appears once,
// whatever the ids claim: an event on a cycle of parents becomes a root.
// Siblings stay in time order.
func traceTree(events []agenttrail.Event) []*traceNode {
	nodes := make([]*traceNode, len(events))
	bySpan := map[string]int{} // span id -> the first event that carries it
	for i := range events {
		nodes[i] = &traceNode{event: &events[i]}
		if s := events[i].SpanID; s != "" {
			if _, ok := bySpan[s]; !ok {
				bySpan[s] = i
			}
		}
	}
	// parent[i] is the index of i's parent, or -1 for a root.
	parent := make([]int, len(events))
	for i := range events {
		parent[i] = -1
		e := &events[i]
		first, shared := bySpan[e.SpanID]
		switch {
		case e.SpanID != "" && shared && first != i:
			parent[i] = parent[first] // a sibling of the span's first event, which came before
		case e.ParentSpanID != "":
			if p, ok := bySpan[e.ParentSpanID]; ok && p != i {
				parent[i] = p
			}
		}
	}
	// Break cycles: walk up from each event; one that meets itself
	// becomes a root.
	for i := range parent {
		seen := map[int]bool{i: true}
		for p := parent[i]; p != -1; p = parent[p] {
			if seen[p] {
				parent[i] = -1
				break
			}
			seen[p] = true
		}
	}
	var roots []*traceNode
	for i, p := range parent {
		if p == -1 {
			roots = append(roots, nodes[i])
		} else {
			nodes[p].children = append(nodes[p].children, nodes[i])
		}
	}
	return roots
}

// printTrace prints the tree of a trace and its totals.
func printTrace(w io.Writer, id string, events []agenttrail.Event) error {
	first, last := events[0].Time, events[0].Time
	var cost float64
	var in, out int64
	sessions := map[string]bool{}
	results := map[agenttrail.Result]int{}
	for i := range events {
		e := &events[i]
		if end := e.Time.Add(time.Duration(e.DurationMS * float64(time.Millisecond))); end.After(last) {
			last = end
		}
		if l, ok := e.LLM(); ok {
			cost += l.Cost()
			in += l.InputTokens + l.CacheReadTokens + l.CacheWriteTokens
			out += l.OutputTokens
		}
		if e.SessionID != "" {
			sessions[e.SessionID] = true
		}
		results[e.Result]++
	}
	fmt.Fprintf(w, "trace %s", id)
	if len(sessions) > 0 {
		fmt.Fprintf(w, "  session %s", strings.Join(slices.Sorted(maps.Keys(sessions)), ", "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tRESOURCE\tRESULT\tDURATION\tCOST")
	var walk func(n *traceNode, prefix, branch string)
	walk = func(n *traceNode, prefix, branch string) {
		e := n.event
		fmt.Fprintf(tw, "%s\t%s%s%s  %s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format("15:04:05.000"), prefix, branch,
			e.Source, cell(e.Action, 60), orDash(cell(resourceOf(e), 48)), result(e), durationOf(e), costOf(e))
		child := prefix
		switch branch {
		case "├─ ":
			child += "│  "
		case "└─ ":
			child += "   "
		}
		for i, c := range n.children {
			b := "├─ "
			if i == len(n.children)-1 {
				b = "└─ "
			}
			walk(c, child, b)
		}
	}
	for _, r := range traceTree(events) {
		walk(r, "", "")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var failed []string
	for _, r := range []agenttrail.Result{agenttrail.ResultFailure, agenttrail.ResultDenied, agenttrail.ResultError} {
		if n := results[r]; n > 0 {
			failed = append(failed, fmt.Sprintf("%d %s", n, r))
		}
	}
	summary := fmt.Sprintf("%d events from %s to %s UTC (%s)", len(events), first.UTC().Format("2006-01-02 15:04:05.000"),
		last.UTC().Format("15:04:05.000"), formatMS(float64(last.Sub(first))/float64(time.Millisecond)))
	if len(failed) > 0 {
		summary += ", " + strings.Join(failed, ", ")
	}
	if in+out > 0 || cost > 0 {
		summary += fmt.Sprintf(", LLM %d tokens in, %d out, $%.4f", in, out, cost)
	}
	_, err := fmt.Fprintln(w, "total: "+summary)
	return err
}

// resourceOf is the resource of e as type/id, or its id alone.
func resourceOf(e *agenttrail.Event) string {
	if e.ResourceType != "" && e.ResourceID != "" {
		return e.ResourceType + "/" + e.ResourceID
	}
	return e.ResourceID
}

// durationOf is e's duration as people read one, or "-".
func durationOf(e *agenttrail.Event) string {
	if e.DurationMS == 0 {
		return "-"
	}
	return formatMS(e.DurationMS)
}

// costOf is the cost of e's LLM call, or "-".
func costOf(e *agenttrail.Event) string {
	l, ok := e.LLM()
	if !ok || l.CostUSD == nil {
		return "-"
	}
	return fmt.Sprintf("$%.4f", *l.CostUSD)
}
