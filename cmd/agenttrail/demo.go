package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

func runDemo(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("demo", env)
	var sf serverFlags
	sf.register(fs, env)
	n := fs.Int("events", 5000, "how many events to send")
	days := fs.Int("days", 7, "spread the events over this many past days")
	batch := fs.Int("batch", 500, "events per request")
	live := fs.Bool("live", false, "also drive real traffic through the LLM, MCP, egress and shell capture, against local stand-in services")
	rounds := fs.Int("rounds", 12, "with --live: calls per surface")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n < 1 || *batch < 1 || *days < 1 {
		return fmt.Errorf("--events, --batch and --days must be positive")
	}
	c := newClient(sf)
	if err := c.Ready(ctx); err != nil {
		return fmt.Errorf("server %s is not ready: %w", sf.server, err)
	}

	// Times spread over the window, sorted so the store fills the way a live
	// system would; a few late arrivals are kept out of order on purpose.
	now := time.Now().UTC()
	span := time.Duration(*days) * 24 * time.Hour
	rnd := rand.New(rand.NewPCG(uint64(now.UnixNano()), 1))
	times := make([]time.Time, *n)
	for i := range times {
		times[i] = now.Add(-time.Duration(rnd.Int64N(int64(span))))
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })

	gen := newTraffic(uint64(now.UnixNano()))
	bar := progressBar{w: env.Stderr, total: *n}
	var accepted, duplicates, rejected int
	for start := 0; start < *n; start += *batch {
		end := min(start+*batch, *n)
		events := make([]agenttrail.Event, 0, end-start)
		for _, t := range times[start:end] {
			events = append(events, gen.event(t))
		}
		res, err := c.Ingest(ctx, events)
		if err != nil {
			bar.done()
			return fmt.Errorf("send events %d-%d: %w", start, end-1, err)
		}
		accepted += res.Accepted
		duplicates += res.Duplicates
		rejected += len(res.Rejected)
		bar.set(end)
	}
	bar.done()
	fmt.Fprintf(env.Stdout, "sent %d events over the last %d days: %d accepted, %d duplicates, %d rejected\n",
		*n, *days, accepted, duplicates, rejected)
	if *live {
		if err := runLiveDemo(ctx, c, env, *rounds); err != nil {
			return fmt.Errorf("live demo: %w", err)
		}
	}
	hint, note := sf.repeat()
	fmt.Fprintf(env.Stdout, "try: %s\n", strings.Join(append(append([]string{"agenttrail", "query"}, hint...), "--since", "1h"), " "))
	if note != "" {
		fmt.Fprintf(env.Stdout, "     (%s)\n", note)
	}
	return nil
}

// progressBar draws "[#####.....]  50%  2500/5000" on one terminal line.
type progressBar struct {
	w     io.Writer
	total int
	last  int
}

func (b *progressBar) set(n int) {
	pct := n * 100 / b.total
	if pct == b.last && n != b.total {
		return
	}
	b.last = pct
	const width = 40
	fill := n * width / b.total
	fmt.Fprintf(b.w, "\r[%s%s] %3d%%  %d/%d events", strings.Repeat("#", fill), strings.Repeat(".", width-fill), pct, n, b.total)
}

func (b *progressBar) done() { fmt.Fprintln(b.w) }
