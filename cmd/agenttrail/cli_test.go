package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
)

// TestEveryCommandAnswersHelp walks every command, proxy and token
// subcommand: -h prints its usage and exits 0, and does nothing else (no
// server is running, no file is made).
func TestEveryCommandAnswersHelp(t *testing.T) {
	var lines [][]string
	for _, c := range commands() {
		lines = append(lines, []string{c.name, "-h"})
	}
	for _, p := range proxies() {
		lines = append(lines, []string{"proxy", p.name, "-h"})
	}
	for _, sub := range []string{"create", "list", "revoke"} {
		lines = append(lines, []string{"token", sub, "-h"})
	}
	lines = append(lines, []string{"-h"}, []string{"help"})
	dir := t.TempDir()
	for _, args := range lines {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(binary, args...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
		err := cmd.Run()
		line := "agenttrail " + strings.Join(args, " ")
		if err != nil {
			t.Errorf("%s: %v\nstderr:\n%s", line, err, stderr.String())
			continue
		}
		if !strings.Contains(strings.ToLower(stderr.String()), "usage") {
			t.Errorf("%s printed no usage on stderr:\n%s", line, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%s wrote to stdout: %q", line, stdout.String())
		}
	}
	if entries, _ := exec.Command("ls", "-A", dir).Output(); len(entries) != 0 {
		t.Errorf("-h left files behind: %s", entries)
	}
}

// runBinary runs the binary and returns its stdout, failing on an error.
func runBinary(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("agenttrail %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String() + stderr.String()
}

// TestCLIReadsWhatTheAPIAnswers runs demo against a fresh server with a
// data directory elsewhere, pastes the command demo suggests, and checks
// query, aggregate and timeseries against the API.
func TestCLIReadsWhatTheAPIAnswers(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, freeAddr(t), data)
	c := p.client()
	out := runBinary(t, "demo", "--server", p.url, "--data", data, "--events", "600")
	i := strings.Index(out, "try: ")
	if i < 0 {
		t.Fatalf("demo suggested no command:\n%s", out)
	}
	suggested := strings.TrimSpace(strings.SplitN(out[i+len("try: "):], "\n", 2)[0])
	sh := exec.Command("sh", "-c", suggested+" --limit 5")
	sh.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"))
	pasted, err := sh.CombinedOutput()
	// The demo's events spread over a week: the last hour may hold none, but
	// the command must reach the server with a token it accepts.
	if err != nil || !(strings.Contains(string(pasted), "TIME") || strings.Contains(string(pasted), "no events")) {
		t.Fatalf("pasting %q: %v\n%s", suggested, err, pasted)
	}

	// query: duration and cost columns, the next-page hint after the table.
	q := runBinary(t, "query", "--server", p.url, "--token", p.token, "--since", "8d", "--source", "llm-proxy", "--limit", "3")
	header := strings.SplitN(q, "\n", 2)[0]
	for _, col := range []string{"DURATION", "COST"} {
		if !strings.Contains(header, col) {
			t.Errorf("query header %q lacks %s", header, col)
		}
	}
	if !strings.Contains(q, "$") {
		t.Errorf("llm-proxy rows show no cost:\n%s", q)
	}
	if hint := strings.Index(q, "next page:"); hint < strings.LastIndex(q, "llm-proxy") {
		t.Errorf("next-page hint is not after the table:\n%s", q)
	}
	cols := runBinary(t, "query", "--server", p.url, "--token", p.token, "--since", "8d", "--limit", "2", "--columns", "id,seq,description")
	if h := strings.Fields(strings.SplitN(cols, "\n", 2)[0]); strings.Join(h, " ") != "ID SEQ DESCRIPTION" {
		t.Errorf("--columns id,seq,description header = %v", h)
	}

	// By default no heartbeat and no audit event is listed; --all-sources
	// lists them.
	list := func(extra ...string) []agenttrail.Event {
		args := append([]string{"query", "--server", p.url, "--token", p.token, "--since", "8d", "--all", "--json"}, extra...)
		var evs []agenttrail.Event
		for _, line := range strings.Split(strings.TrimSpace(runBinary(t, args...)), "\n") {
			if line == "" || strings.HasPrefix(line, "next page") {
				continue
			}
			var e agenttrail.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("query --json line %q: %v", line, err)
			}
			evs = append(evs, e)
		}
		return evs
	}
	count := func(evs []agenttrail.Event, bookkeeping bool) int {
		n := 0
		for _, e := range evs {
			if (e.Source == agenttrail.SourceAudit || e.Action == agenttrail.ActionHeartbeat) == bookkeeping {
				n++
			}
		}
		return n
	}
	def, every := list(), list("--all-sources")
	if count(def, true) != 0 || count(every, true) == 0 || count(def, false) != count(every, false) {
		t.Errorf("default listing: %d bookkeeping of %d; --all-sources: %d of %d; want none by default, some with --all-sources, the same others",
			count(def, true), len(def), count(every, true), len(every))
	}

	// A stray word suggests --q.
	var stderr bytes.Buffer
	stray := exec.Command(binary, "query", "--server", p.url, "--token", p.token, "github")
	stray.Stderr = &stderr
	if err := stray.Run(); err == nil || !strings.Contains(stderr.String(), `--q "github"`) {
		t.Errorf("query github: %v, stderr %q; want a usage error suggesting --q", err, stderr.String())
	}

	// aggregate: the same counts as the API, as a table and as JSON.
	want, err := c.Aggregate(context.Background(), agenttrail.Filter{Source: []string{agenttrail.SourceLLM}}, agenttrail.DimModel)
	if err != nil || len(want) == 0 {
		t.Fatalf("Aggregate: %v, %d buckets", err, len(want))
	}
	var agg struct {
		By      string              `json:"by"`
		Buckets []agenttrail.Bucket `json:"buckets"`
	}
	if err := json.Unmarshal([]byte(runBinary(t, "aggregate", "--server", p.url, "--token", p.token, "--by", "model", "--source", "llm-proxy", "--json")), &agg); err != nil {
		t.Fatal(err)
	}
	if agg.By != "model" || len(agg.Buckets) != len(want) || agg.Buckets[0].Count != want[0].Count {
		t.Errorf("aggregate --json = %+v, want the API's %+v", agg, want)
	}
	table := runBinary(t, "aggregate", "--server", p.url, "--token", p.token, "--by", "model", "--source", "llm-proxy")
	if !strings.Contains(table, want[0].Key) || !strings.Contains(table, "█") {
		t.Errorf("aggregate table lacks %s or its bar:\n%s", want[0].Key, table)
	}

	// timeseries: one row per hour of the last day, bars, and per-key columns.
	ts := runBinary(t, "timeseries", "--server", p.url, "--token", p.token, "--interval", "hour", "--by", "source")
	rows := strings.Split(strings.TrimSpace(ts), "\n")
	if len(rows) < 25 || !strings.Contains(ts, "█") || !strings.Contains(rows[0], "START") {
		t.Errorf("timeseries --interval hour: %d lines, want a header and 24 or 25 hours with bars:\n%s", len(rows), ts)
	}
	var series struct {
		Interval string                  `json:"interval"`
		Buckets  []agenttrail.TimeBucket `json:"buckets"`
	}
	if err := json.Unmarshal([]byte(runBinary(t, "timeseries", "--server", p.url, "--token", p.token, "--interval", "day", "--since", "8d", "--json")), &series); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, b := range series.Buckets {
		total += b.Count
	}
	if series.Interval != "day" || len(series.Buckets) < 8 || total < 600 {
		t.Errorf("timeseries --interval day --json: interval %s, %d buckets, %d events; want day, 8 or 9 buckets, at least the 600 sent", series.Interval, len(series.Buckets), total)
	}
}

// TestLoadSendsForADuration: with --duration, load sends until the time is
// up, whatever --events says (bench measures so, as the outside load
// generator does), and every sender's request counts.
func TestLoadSendsForADuration(t *testing.T) {
	p := startServe(t, freeAddr(t), t.TempDir())
	out := runBinary(t, "load", "--server", p.url, "--token", p.token, "--json",
		"--events", "100", "--batch", "100", "--senders", "2", "--duration", "1s")
	var res ingestResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("load printed %q: %v", out, err)
	}
	if res.Events < 200 || res.Events%100 != 0 {
		t.Errorf("load --duration 1s with 2 senders sent %d events, want whole requests of 100 from both senders", res.Events)
	}
	if res.Seconds < 1 {
		t.Errorf("load --duration 1s stopped after %.2f s", res.Seconds)
	}
}
