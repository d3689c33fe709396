package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/storetest"
)

// BenchmarkConsole measures, in headless chromium, the time from navigating
// to a console page to the page showing its data (every API answer the
// page waits for rendered), on an embedded store of 1,000,000 events over
// the last 30 days ($AGENTTRAIL_BENCH_EVENTS overrides the number). The
// target is under 1 s for Events and Overview. A page has its data when
// its rows, charts and breakdowns are rendered; the match count of Events
// and the gap banner follow on their own.
//
//	go test -run '^$' -bench Console -benchtime 5x ./web
func BenchmarkConsole(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("AGENTTRAIL_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("AGENTTRAIL_BENCH_EVENTS: %v", err)
		}
	}
	// Building the store takes minutes; AGENTTRAIL_BENCH_DATA names a data
	// directory to build once and reuse (its events are then as old as the
	// first run).
	dir := os.Getenv("AGENTTRAIL_BENCH_DATA")
	if dir == "" {
		dir = b.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, app.StoreFile)); err != nil {
		fill(b, dir, n)
	}
	srv := servertest.StartAt(b, "127.0.0.1:0", dir)
	br := newBrowser(b, srv)
	br.signIn(b, server.RoleRead, server.AllOrgs)
	for _, p := range []struct{ name, path, data string }{
		{"events-24h", "/events?since=24h", "table.events tbody tr"},
		{"events-one-agent-7d", "/events?since=7d&actor_id=agent-03", "table.events tbody tr"},
		{"overview-24h", "/overview?since=24h", ".chart g.bar"},
		{"overview-30d", "/overview?since=30d", ".chart g.bar"},
		{"cost-30d", "/cost?since=30d", "table.usage tbody tr"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				ctx, cancel := context.WithTimeout(br.ctx, time.Minute)
				err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+p.path), ready())
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if rows := eval[int](b, br, `document.querySelectorAll('`+p.data+`').length`); rows == 0 {
				b.Fatalf("%s shows no data (%s)", p.path, p.data)
			}
		})
	}
}

// fill builds the embedded store of a data directory with n generated
// events spread over the last 30 days, in batches as the write path commits
// them.
func fill(b *testing.B, dir string, n int) {
	b.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, app.StoreFile), sqlite.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	const chunk = 10_000
	end := time.Now().Add(-time.Minute)
	span := 30 * 24 * time.Hour
	slice := span / time.Duration((n+chunk-1)/chunk)
	for i := 0; i*chunk < n; i++ {
		evs := storetest.Events(int64(i+1), min(chunk, n-i*chunk), end.Add(-span+time.Duration(i)*slice), slice)
		if _, err := store.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
}
