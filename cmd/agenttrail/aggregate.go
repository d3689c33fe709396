package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// runAggregate is `agenttrail aggregate --by F [filters]`: counts and LLM
// usage per value of one dimension, largest first, as a table with bars or
// as the server's JSON answer.
func runAggregate(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("aggregate", env)
	var (
		sf     serverFlags
		ff     filterFlags
		by     = fs.String("by", "", "dimension to group by (required): "+dimensionNames())
		asJSON = fs.Bool("json", false, "print the server's JSON answer")
	)
	sf.register(fs, env)
	ff.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	dim := agenttrail.Dimension(*by)
	if !dim.Valid() {
		fmt.Fprintf(fs.Output(), "--by: want one of %s, not %q\n", dimensionNames(), *by)
		return errUsage
	}
	filter, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	buckets, err := newClient(sf).Aggregate(ctx, filter, dim)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, wire.Aggregate{By: dim, Buckets: buckets})
	}
	if len(buckets) == 0 {
		fmt.Fprintln(env.Stdout, "no events")
		return nil
	}
	var total, most int64
	for _, b := range buckets {
		total += b.Count
		most = max(most, b.Count)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tCOUNT\tSHARE\t\tINPUT TOKENS\tOUTPUT TOKENS\tCOST\n", strings.ToUpper(*by))
	for _, b := range buckets {
		key := b.Key
		if key == "" {
			key = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%s\t%d\t%d\t$%.4f\n", cell(key, 48), b.Count,
			100*float64(b.Count)/float64(total), bar(float64(b.Count), float64(most), 30), b.InputTokens, b.OutputTokens, b.CostUSD)
	}
	fmt.Fprintf(tw, "total\t%d\t\t\t\t\t\n", total)
	return tw.Flush()
}

// runTimeseries is `agenttrail timeseries --interval hour [--by F]
// [filters]`: events per UTC hour, day or ISO week, empty buckets included,
// as bars or as the server's JSON answer.
func runTimeseries(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("timeseries", env)
	var (
		sf       serverFlags
		ff       filterFlags
		interval = fs.String("interval", string(agenttrail.Hour), "bucket width: hour, day or week (the range defaults to 24 hours, 30 days or 12 weeks)")
		by       = fs.String("by", "", "also count per value of this dimension, the five largest as columns: "+dimensionNames())
		asJSON   = fs.Bool("json", false, "print the server's JSON answer")
	)
	sf.register(fs, env)
	ff.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	iv := agenttrail.Interval(*interval)
	switch iv {
	case agenttrail.Hour, agenttrail.Day, agenttrail.Week:
	default:
		fmt.Fprintf(fs.Output(), "--interval: want hour, day or week, not %q\n", *interval)
		return errUsage
	}
	dim := agenttrail.Dimension(*by)
	if dim != "" && !dim.Valid() {
		fmt.Fprintf(fs.Output(), "--by: want one of %s, not %q\n", dimensionNames(), *by)
		return errUsage
	}
	filter, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	buckets, err := newClient(sf).Series(ctx, filter, iv, dim)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, struct {
			Interval agenttrail.Interval     `json:"interval"`
			By       agenttrail.Dimension    `json:"by,omitempty"`
			Buckets  []agenttrail.TimeBucket `json:"buckets"`
		}{iv, dim, buckets})
	}
	printSeries(env.Stdout, iv, dim, buckets)
	return nil
}

// printSeries prints one row per bucket: its start, its count drawn as a
// bar, and with a dimension the counts of its five largest keys.
func printSeries(w io.Writer, iv agenttrail.Interval, dim agenttrail.Dimension, buckets []agenttrail.TimeBucket) {
	var most, total int64
	totals := map[string]int64{}
	for _, b := range buckets {
		most, total = max(most, b.Count), total+b.Count
		for k, n := range b.By {
			totals[k] += n
		}
	}
	keys := make([]string, 0, len(totals))
	for k := range totals {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a, b)) })
	other := len(keys) > 5
	keys = keys[:min(len(keys), 5)]
	layout := "2006-01-02 15:04"
	if iv != agenttrail.Hour {
		layout = "2006-01-02"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "START (UTC)\tCOUNT\t")
	for _, k := range keys {
		if k == "" {
			k = "(none)"
		}
		fmt.Fprintf(tw, "\t%s", cell(k, 24))
	}
	if other {
		fmt.Fprint(tw, "\tother")
	}
	fmt.Fprintln(tw)
	for _, b := range buckets {
		fmt.Fprintf(tw, "%s\t%d\t%s", b.Start.UTC().Format(layout), b.Count, bar(float64(b.Count), float64(most), 40))
		var shown int64
		for _, k := range keys {
			fmt.Fprintf(tw, "\t%d", b.By[k])
			shown += b.By[k]
		}
		if other {
			fmt.Fprintf(tw, "\t%d", b.Count-shown)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d events in %d %s buckets", total, len(buckets), iv)
	if dim != "" {
		fmt.Fprintf(w, ", %d values of %s", len(totals), dim)
	}
	fmt.Fprintln(w)
}

// bar draws v out of most as a bar of up to width cells of block
// characters, in eighths of a cell; any v above zero shows.
func bar(v, most float64, width int) string {
	if v <= 0 || most <= 0 {
		return ""
	}
	eighths := int(math.Round(v / most * float64(width*8)))
	eighths = max(eighths, 1)
	partial := []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}
	return strings.Repeat("█", eighths/8) + partial[eighths%8]
}

func dimensionNames() string {
	names := make([]string, len(agenttrail.Dimensions))
	for i, d := range agenttrail.Dimensions {
		names[i] = string(d)
	}
	return strings.Join(names, ", ")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
