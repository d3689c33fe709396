package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/server"
)

// benchConfig is what `agenttrail bench` measures and how much.
type benchConfig struct {
	store        string        // "sqlite" or a postgres:// URL
	dir          string        // where SQLite files go; a temporary directory by default
	duration     time.Duration // how long the group-commit ingest run sends
	events       int           // events for the group-commit ingest run, when duration is 0
	naiveEvents  int           // events for the naive run
	batch        int           // events per HTTP request
	senders      int           // concurrent HTTP senders
	storeEvents  int           // size of the store the queries run on
	runs         int           // runs per query (percentiles)
	baselineRuns int           // runs per plain GROUP BY
	skipQueries  bool
	json         bool
	nats         string // with it, also the path through a NATS JetStream stream
}

// benchReport is the result of one run, printed as a table or as JSON.
type benchReport struct {
	Store       string        `json:"store"`
	CPUs        int           `json:"cpus"`
	Ingest      ingestResult  `json:"ingest"`
	Naive       ingestResult  `json:"naive"`
	IngestRatio float64       `json:"ingest_ratio"`
	PeakRSSMiB  float64       `json:"peak_rss_mib"`
	StoreEvents int           `json:"store_events,omitempty"`
	BuildSecs   float64       `json:"store_build_seconds,omitempty"`
	Queries     []queryResult `json:"queries,omitempty"`
	// NATS is the path ingest node → JetStream → writer → store, measured
	// on the same store as Ingest; NATSRatio is its events/s over Ingest's.
	NATS      *natsResult `json:"nats,omitempty"`
	NATSRatio float64     `json:"nats_ratio,omitempty"`
}

// ingestResult is one ingest measurement; `agenttrail load --json` prints
// one.
type ingestResult struct {
	Events       int     `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
}

type queryResult struct {
	Name          string  `json:"name"`
	P50Millis     float64 `json:"p50_ms"`
	P95Millis     float64 `json:"p95_ms"`
	TargetMillis  float64 `json:"target_p95_ms"`
	BaselineName  string  `json:"baseline,omitempty"`
	BaselineP95   float64 `json:"baseline_p95_ms,omitempty"`
	SpeedupVsBase float64 `json:"speedup,omitempty"`
}

func runBench(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("bench", env)
	var c benchConfig
	fs.StringVar(&c.store, "store", "sqlite", "store to measure: sqlite, or a postgres:// URL")
	fs.StringVar(&c.dir, "dir", "", "directory for the SQLite files (default: a temporary one, removed after)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long events are sent through the ingest pipeline, as the outside load generator's -d (0: send --events)")
	fs.IntVar(&c.events, "events", 300000, "events sent through the ingest pipeline when --duration is 0")
	fs.IntVar(&c.naiveEvents, "naive-events", 5000, "events sent through the naive design")
	fs.IntVar(&c.batch, "batch", 1000, "events per HTTP request")
	fs.IntVar(&c.senders, "senders", 4, "concurrent HTTP senders")
	fs.IntVar(&c.storeEvents, "store-events", 1000000, "events in the store the queries run on")
	fs.IntVar(&c.runs, "runs", 50, "runs of each query")
	fs.IntVar(&c.baselineRuns, "baseline-runs", 5, "runs of each plain GROUP BY")
	fs.BoolVar(&c.skipQueries, "skip-queries", false, "measure ingest only")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.StringVar(&c.nats, "nats", "", "also measure ingest through this NATS server's JetStream (an ingest node and a writer) against the same PostgreSQL store")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (c.duration == 0 && c.events < c.batch) || c.duration < 0 || c.naiveEvents < 1 || c.senders < 1 || c.runs < 1 {
		return fmt.Errorf("--events must be at least --batch, and counts and --duration positive")
	}
	if c.nats != "" && storeKind(c.store) == "sqlite" {
		return fmt.Errorf("--nats needs a PostgreSQL store (--store postgres://…): a cluster's writer commits into PostgreSQL")
	}
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "agenttrail-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.dir = dir
	}
	progress := env.Stderr
	if c.json {
		progress = io.Discard
	}
	rep := benchReport{Store: storeKind(c.store), CPUs: runtime.GOMAXPROCS(0)}
	var err error
	if c.duration > 0 {
		fmt.Fprintf(progress, "ingest: %v of events over HTTP, %d senders, %d events/request, group commit...\n", c.duration, c.senders, c.batch)
	} else {
		fmt.Fprintf(progress, "ingest: %d events over HTTP, %d senders, %d events/request, group commit...\n", c.events, c.senders, c.batch)
	}
	if rep.Ingest, err = benchIngest(ctx, c, "group", false, c.events, c.duration); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	fmt.Fprintf(progress, "naive: %d events, one transaction per event...\n", c.naiveEvents)
	if rep.Naive, err = benchIngest(ctx, c, "naive", true, c.naiveEvents, 0); err != nil {
		return fmt.Errorf("naive ingest: %w", err)
	}
	rep.IngestRatio = rep.Ingest.EventsPerSec / rep.Naive.EventsPerSec
	if c.nats != "" {
		fmt.Fprintln(progress, "nats: the same over HTTP to an ingest node, through JetStream, committed by a writer...")
		res, err := benchNATS(ctx, c)
		if err != nil {
			return fmt.Errorf("ingest through NATS: %w", err)
		}
		rep.NATS, rep.NATSRatio = &res, res.EventsPerSec/rep.Ingest.EventsPerSec
	}
	rep.PeakRSSMiB = peakRSSMiB()
	if !c.skipQueries {
		if err := benchQueries(ctx, c, &rep, progress); err != nil {
			return fmt.Errorf("queries: %w", err)
		}
	}
	if c.json {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printReport(env.Stdout, rep)
	return nil
}

func storeKind(s string) string {
	if i := strings.Index(s, "://"); i > 0 {
		return s[:i]
	}
	return s
}

// benchIngest runs a server as `agenttrail serve` runs it (package app:
// tokens, rate limit, redaction, the spool) on a fresh store, and measures
// its ingest from outside its process, as an outside load generator would:
// `agenttrail load` in a child process sends events over HTTP for d (n
// events when d is 0) from c.senders senders, c.batch events a request,
// with the admin token. Sending for a time, as the outside generator
// does, makes the store as large as it makes it: a fixed count ends on a
// smaller store the faster the server is, and measures more. A
// load generator inside the server's process would share its Go scheduler
// and its share of a busy machine's CPU, and measure something else. naive
// makes the writer commit each event in its own transaction: the design
// agenttrail replaces, measured with the same server, schema and engine.
// It also returns the server's peak RSS.
func benchIngest(ctx context.Context, c benchConfig, name string, naive bool, n int, d time.Duration) (ingestResult, error) {
	dataDir, store, cleanup, err := benchStore(ctx, c, name)
	if err != nil {
		return ingestResult{}, err
	}
	defer cleanup()
	m, err := app.Open(ctx, app.Config{
		Addr: "127.0.0.1:0", DataDir: dataDir, Store: store,
		RateLimit: server.RateLimit{Rate: app.DefaultRate, Burst: app.DefaultBurst}, Ingest: ingest.Config{Naive: naive},
	})
	if err != nil {
		return ingestResult{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- m.Run(runCtx) }()
	defer func() {
		stop()
		<-ran
	}()
	token, err := os.ReadFile(filepath.Join(dataDir, app.AdminTokenFile))
	if err != nil {
		return ingestResult{}, err
	}
	return loadChild(ctx, c, m.URL(), strings.TrimSpace(string(token)), n, d)
}

// loadChild runs `agenttrail load` in a child process against the server
// at url: events for d (n events when d is 0) from c.senders senders,
// c.batch events a request.
func loadChild(ctx context.Context, c benchConfig, url, token string, n int, d time.Duration) (ingestResult, error) {
	self, err := os.Executable()
	if err != nil {
		return ingestResult{}, err
	}
	var out, errOut bytes.Buffer
	args := []string{"load", "--json", "--server", url, "--senders", strconv.Itoa(c.senders)}
	if d > 0 {
		args = append(args, "--duration", d.String(), "--batch", strconv.Itoa(c.batch))
	} else {
		args = append(args, "--events", strconv.Itoa(n), "--batch", strconv.Itoa(min(c.batch, n)))
	}
	load := exec.CommandContext(ctx, self, args...)
	load.Env = append(os.Environ(), "AGENTTRAIL_TOKEN="+token)
	load.Stdout, load.Stderr = &out, &errOut
	if err := load.Run(); err != nil {
		// %v, not %w: an *exec.ExitError wrapped would make agenttrail
		// exit with the child's code and print nothing.
		return ingestResult{}, fmt.Errorf("agenttrail load: %v: %s", err, errOut.String())
	}
	var res ingestResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return ingestResult{}, fmt.Errorf("agenttrail load printed %q: %w", out.String(), err)
	}
	return res, nil
}

// percentile returns the p-th percentile (0–100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// peakRSSMiB reads the process's peak resident set from /proc (Linux); it
// is 0 elsewhere. The load generator runs in a process of its own, so this
// is the server's.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func printReport(w io.Writer, r benchReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "agenttrail bench — store %s, %d CPUs\n\n", r.Store, r.CPUs)
	fmt.Fprintln(tw, "ingest over HTTP\tevents\tseconds\tevents/s\t")
	fmt.Fprintf(tw, "group commit (pipeline)\t%d\t%.2f\t%.0f\t\n", r.Ingest.Events, r.Ingest.Seconds, r.Ingest.EventsPerSec)
	fmt.Fprintf(tw, "naive (a transaction per event)\t%d\t%.2f\t%.0f\t\n", r.Naive.Events, r.Naive.Seconds, r.Naive.EventsPerSec)
	tw.Flush()
	fmt.Fprintf(w, "\ngroup commit / naive: %.1fx   (target >= 20x; >= 100,000 events/s on sqlite)\n", r.IngestRatio)
	fmt.Fprintf(w, "peak RSS of the server's process: %.0f MiB\n", r.PeakRSSMiB)
	if n := r.NATS; n != nil {
		fmt.Fprintf(w, "\nthrough NATS JetStream (ingest node → stream → writer → store), %d events\n", n.Events)
		fmt.Fprintf(w, "  acknowledged to the senders: %.0f events/s\n", n.AckedEventsPerSec)
		fmt.Fprintf(w, "  committed by the writer:     %.0f events/s   (%.2f s from the first send to the last commit)\n", n.EventsPerSec, n.Seconds)
		fmt.Fprintf(w, "  writer's lag: at most %d messages (about %d events) behind; %.2f s to drain after the last acknowledgement\n", n.MaxLagMessages, n.MaxLagEvents, n.DrainSeconds)
		fmt.Fprintf(w, "  stream: %d messages, %.0f events each on average\n", n.Messages, float64(n.Events)/float64(max(n.Messages, 1)))
		fmt.Fprintf(w, "NATS path / direct: %.0f%%   (target >= 80%%)\n", 100*r.NATSRatio)
	}
	if len(r.Queries) == 0 {
		return
	}
	fmt.Fprintf(w, "\nqueries on a %d-event store (built in %.1f s)\n", r.StoreEvents, r.BuildSecs)
	fmt.Fprintln(tw, "query\tp50 ms\tp95 ms\ttarget p95\tplain GROUP BY p95 ms\tspeedup\t")
	for _, q := range r.Queries {
		base, speed := "-", "-"
		if q.BaselineName != "" {
			base, speed = fmt.Sprintf("%.1f", q.BaselineP95), fmt.Sprintf("%.0fx", q.SpeedupVsBase)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t<= %.0f\t%s\t%s\t\n", q.Name, q.P50Millis, q.P95Millis, q.TargetMillis, base, speed)
	}
	tw.Flush()
}
