package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/storetest"
)

type aggregate struct {
	Buckets []agenttrail.Bucket `json:"buckets"`
}

type series struct {
	Buckets []agenttrail.TimeBucket `json:"buckets"`
}

// bar is one bar of a chart or a bar list as the page shows it.
type bar struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (b *browser) bars(t *testing.T, selector string) []bar {
	t.Helper()
	return eval[[]bar](t, b, `[...document.querySelectorAll(`+"`"+selector+"`"+`)].map((e) => ({key: e.dataset.key || e.dataset.start, value: e.dataset.value || e.dataset.total}))`)
}

func close(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestConsoleOverviewMatchesAPI(t *testing.T) {
	srv := servertest.Start(t)
	seedVaried(t, srv, 130)
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)
	filter := query("since", "24h", "project", "alpha")
	b.open(t, "/overview?"+filter+"&interval=hour&split=result")

	var s series
	api(t, srv, http.MethodGet, "/v1/timeseries?"+filter+"&interval=hour&by=result", nil, &s)
	got := b.bars(t, ".chart g.bar")
	if len(got) != len(s.Buckets) {
		t.Fatalf("the chart has %d bars, the API %d buckets", len(got), len(s.Buckets))
	}
	var sum int64
	for i, x := range s.Buckets {
		sum += x.Count
		if start, _ := time.Parse(time.RFC3339, got[i].Key); !start.Equal(x.Start) || got[i].Value != fmt.Sprint(x.Count) {
			t.Errorf("bar %d = %s %s, the API's bucket %s %d", i, got[i].Key, got[i].Value, x.Start, x.Count)
		}
	}
	if sum != 65 {
		t.Errorf("the series sums to %d, want 65 (alpha's events)", sum)
	}
	for _, by := range []string{"source", "actor_type", "result", "action", "resource_type"} {
		var a aggregate
		api(t, srv, http.MethodGet, "/v1/aggregate?"+filter+"&by="+by, nil, &a)
		var want []bar
		for _, x := range a.Buckets[:min(10, len(a.Buckets))] {
			want = append(want, bar{x.Key, fmt.Sprint(x.Count)})
		}
		if got := b.bars(t, "#b-"+by+" ~ .barlist li"); !slices.Equal(got, want) {
			t.Errorf("breakdown by %s shows %v, the API %v", by, got, want)
		}
	}
	var results aggregate
	api(t, srv, http.MethodGet, "/v1/aggregate?"+filter+"&by=result", nil, &results)
	for _, x := range results.Buckets {
		if x.Key != "failure" {
			continue
		}
		if v := eval[string](t, b, `document.querySelector('.tile.bad .tile-v') && document.querySelector('.tile.bad .tile-v').dataset.value`); v != fmt.Sprint(x.Count) || x.Count == 0 {
			t.Errorf("the failures tile shows %q, want %d standing out", v, x.Count)
		}
	}

	// A bar of a breakdown opens Events with its filter.
	b.do(t, chromedp.Click(chromedp.CSS(`#b-source ~ .barlist li[data-key="shell"] a`)), ready())
	if p := b.path(t); !strings.HasPrefix(p, "/events?") || !strings.Contains(p, "source=shell") || !strings.Contains(p, "project=alpha") {
		t.Errorf("clicking shell opened %s, want Events filtered by source=shell and project=alpha", p)
	}
	var shell apiPage
	api(t, srv, http.MethodGet, "/v1/events?source=shell&project=alpha&limit=50", nil, &shell)
	if got := b.pageIDs(t); !slices.Equal(got, shell.ids()) {
		t.Errorf("Events after the click shows %v, the API %v", got, shell.ids())
	}
}

func TestConsoleCostMatchesAPI(t *testing.T) {
	srv := servertest.Start(t)
	seedVaried(t, srv, 130)
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)
	b.open(t, "/cost?since=7d&interval=day")

	var byModel aggregate
	api(t, srv, http.MethodGet, "/v1/aggregate?since=7d&by=model", nil, &byModel)
	var cost float64
	var input, cacheRead int64
	for _, x := range byModel.Buckets {
		cost += x.CostUSD
		input += x.InputTokens
		cacheRead += x.CacheReadTokens
	}
	tiles := eval[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll('.tiles .tile')].map((e) => [e.querySelector('.tile-k').textContent, e.querySelector('.tile-v').dataset.value]))`)
	var shown, ratio float64
	fmt.Sscan(tiles["cost"], &shown)
	fmt.Sscan(tiles["cache hit ratio"], &ratio)
	if cost == 0 || !close(shown, cost) {
		t.Errorf("the cost tile shows %v, the API's sum is %v", tiles["cost"], cost)
	}
	if want := float64(cacheRead) / float64(input+cacheRead); !close(ratio, want) {
		t.Errorf("cache hit ratio %v, want %v", ratio, want)
	}
	if tiles["input tokens"] != fmt.Sprint(input) {
		t.Errorf("input tokens tile %s, want %d", tiles["input tokens"], input)
	}
	for _, by := range []string{"model", "actor_id", "project"} {
		var a aggregate
		api(t, srv, http.MethodGet, "/v1/aggregate?since=7d&by="+by, nil, &a)
		rows := eval[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll('table.usage[data-by="`+by+`"] tbody tr')].map((r) => [r.dataset.key, r.querySelector('[data-cost]').dataset.cost]))`)
		n := 0
		for _, x := range a.Buckets {
			if x.CostUSD == 0 {
				continue
			}
			n++
			var got float64
			fmt.Sscan(rows[x.Key], &got)
			if !close(got, x.CostUSD) {
				t.Errorf("cost by %s of %q shows %q, the API %v", by, x.Key, rows[x.Key], x.CostUSD)
			}
		}
		if len(rows) != n || n == 0 {
			t.Errorf("cost by %s has %d rows, the API %d with cost", by, len(rows), n)
		}
	}
	var s series
	api(t, srv, http.MethodGet, "/v1/timeseries?since=7d&interval=day", nil, &s)
	tokens := b.bars(t, "#tokens-over-time .chart g.bar")
	if len(tokens) != len(s.Buckets) {
		t.Fatalf("the token chart has %d bars, the API %d buckets", len(tokens), len(s.Buckets))
	}
	var allTokens int64
	for i, x := range s.Buckets {
		sum := x.InputTokens + x.OutputTokens + x.CacheReadTokens + x.CacheWriteTokens
		allTokens += sum
		if tokens[i].Value != fmt.Sprint(sum) {
			t.Errorf("token bar %d = %s, the API %d", i, tokens[i].Value, sum)
		}
	}
	if allTokens == 0 {
		t.Errorf("the series has no tokens; the test needs some")
	}
	got := b.bars(t, ".chart g.bar:not(#tokens-over-time *)")
	if len(got) != len(s.Buckets) {
		t.Fatalf("the cost chart has %d bars, the API %d buckets", len(got), len(s.Buckets))
	}
	for i, x := range s.Buckets {
		var v float64
		fmt.Sscan(got[i].Value, &v)
		if !close(v, x.CostUSD) {
			t.Errorf("cost bar %d = %v, the API %v", i, v, x.CostUSD)
		}
	}
}

// seedGaps stores heartbeats of agent with a silence, and a producer
// whose sequence skips 3 and 4.
func seedGaps(t *testing.T, srv *servertest.Server, agent, producer string) {
	t.Helper()
	hb := func(d time.Duration) map[string]any {
		return event(map[string]any{"actor_id": agent, "source": "agent", "action": "heartbeat", "time": ago(d), "metadata": map[string]any{"interval_ms": 60000}})
	}
	ingest(t, srv, hb(50*time.Minute), hb(49*time.Minute), hb(48*time.Minute), hb(10*time.Minute), hb(9*time.Minute))
	var seq []map[string]any
	for _, n := range []int{1, 2, 5} {
		seq = append(seq, event(map[string]any{"producer_id": producer, "producer_seq": n, "time": ago(time.Duration(n) * time.Minute)}))
	}
	ingest(t, srv, seq...)
}

func TestConsoleGapsMatchAPI(t *testing.T) {
	srv := servertest.Start(t)
	seedGaps(t, srv, "agent-hb", "prod-1")
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)
	b.open(t, "/gaps?since=1h")
	var g struct {
		Heartbeats []struct {
			ActorID string `json:"actor_id"`
		} `json:"heartbeats"`
		Sequences []struct {
			ProducerID string `json:"producer_id"`
			From, To   int64
		} `json:"sequences"`
	}
	api(t, srv, http.MethodGet, "/v1/gaps?since=1h", nil, &g)
	hb := eval[[]string](t, b, `[...document.querySelectorAll('#heartbeat-gaps tbody tr')].map((r) => r.cells[0].textContent)`)
	seq := eval[[]string](t, b, `[...document.querySelectorAll('#sequence-gaps tbody tr')].map((r) => r.cells[0].textContent + ' ' + r.cells[2].textContent + '-' + r.cells[3].textContent)`)
	var wantHB, wantSeq []string
	for _, x := range g.Heartbeats {
		wantHB = append(wantHB, x.ActorID)
	}
	for _, x := range g.Sequences {
		wantSeq = append(wantSeq, fmt.Sprintf("%s %d-%d", x.ProducerID, x.From, x.To))
	}
	if !slices.Equal(hb, wantHB) || !slices.Equal(seq, wantSeq) || len(wantHB) == 0 || len(wantSeq) == 0 {
		t.Errorf("Gaps shows heartbeats %v and sequences %v; the API %v and %v", hb, seq, wantHB, wantSeq)
	}
	// Every page warns about the range's gaps; a range without any does not.
	for _, path := range []string{"/events?since=1h", "/overview?since=1h", "/cost?since=1h"} {
		b.open(t, path)
		b.do(t, chromedp.WaitVisible(chromedp.CSS("#banner .banner")))
	}
	b.open(t, "/events?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z")
	b.do(t, chromedp.WaitReady(chromedp.CSS(`#banner[aria-busy="false"]`)))
	if eval[bool](t, b, `!!document.querySelector('#banner .banner')`) {
		t.Errorf("a range without gaps shows the gap banner")
	}
}

func TestConsoleSignInLinkOnceAndRevokedSession(t *testing.T) {
	srv := servertest.Start(t)
	b := newBrowser(t, srv)
	code := loginCode(t, srv, server.RoleRead, server.AllOrgs)
	b.open(t, "/overview#login="+code)
	if p := b.path(t); p != "/overview" {
		t.Errorf("after signing in the address is %s, want /overview without the code", p)
	}
	if s := eval[string](t, b, `sessionStorage.getItem('agenttrail.token') || ''`); !strings.HasPrefix(s, "at_") {
		t.Fatalf("no session token in sessionStorage")
	}
	if n := eval[int](t, b, `localStorage.length`); n != 0 {
		t.Errorf("localStorage holds %d items, want none", n)
	}
	if c := eval[string](t, b, `document.cookie`); c != "" {
		t.Errorf("cookies %q, want none", c)
	}

	// The session token shows in the token list; revoking it ends the
	// console's session at its next request.
	var list struct {
		Tokens []struct {
			ID        string `json:"id"`
			Name      string `json:"name"`
			ExpiresAt string `json:"expires_at"`
		} `json:"tokens"`
	}
	api(t, srv, http.MethodGet, "/v1/tokens", nil, &list)
	var id string
	for _, tk := range list.Tokens {
		if strings.HasPrefix(tk.Name, "session-") && tk.ExpiresAt != "" {
			id = tk.ID
		}
	}
	if id == "" {
		t.Fatalf("the session is not in the token list: %+v", list.Tokens)
	}
	api(t, srv, http.MethodDelete, "/v1/tokens/"+id, nil, nil)
	time.Sleep(1200 * time.Millisecond) // a token change reaches the server within a second
	b.do(t, chromedp.Click(chromedp.CSS(`nav a[href^="/events"]`)), ready())
	b.do(t, chromedp.WaitVisible(chromedp.CSS("form.signin")))
	if msg := eval[string](t, b, `document.querySelector('form.signin .error').textContent`); !strings.Contains(msg, "session ended") || !strings.Contains(msg, "revoked") {
		t.Errorf("after revocation the sign-in page says %q, want the session ended because it was revoked", msg)
	}
	if s := eval[string](t, b, `sessionStorage.getItem('agenttrail.token') || ''`); s != "" {
		t.Errorf("the revoked token is still in sessionStorage")
	}

	// The link a second time: a clear error, no session.
	b.open(t, "/events#login="+code)
	b.do(t, chromedp.WaitVisible(chromedp.CSS("form.signin")))
	if msg := eval[string](t, b, `document.querySelector('form.signin .error').textContent`); !strings.Contains(msg, "already used") {
		t.Errorf("the used link shows %q, want it to say the link was used", msg)
	}
	if msgs := b.messages(); len(msgs) > 0 {
		for _, m := range msgs {
			if !strings.Contains(m, "401") { // the browser logs refused requests
				t.Errorf("console: %s", m)
			}
		}
	}
}

func TestConsoleTokens(t *testing.T) {
	srv := servertest.Start(t)
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)
	if eval[bool](t, b, `!!document.querySelector('nav a[href="/tokens"]')`) {
		t.Errorf("a read session sees the Tokens page in the menu")
	}
	b.do(t, chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`))
	b.signIn(t, server.RoleAdmin, server.AllOrgs)
	b.open(t, "/tokens")
	b.do(t, chromedp.SendKeys(chromedp.CSS("#t-name"), "ci-reader"), chromedp.SendKeys(chromedp.CSS("#t-org"), "acme"),
		chromedp.Click(chromedp.CSS(".create-token button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#new-secret")),
		chromedp.WaitVisible(chromedp.CSS(`#tokens tr[data-id] button.danger`)))
	secret := eval[string](t, b, `document.getElementById('new-secret').textContent`)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/session", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the secret the page showed does not work: %v %v", resp, err)
	}
	resp.Body.Close()
	id := strings.Split(strings.TrimPrefix(secret, "at_"), "_")[0]
	b.do(t, chromedp.Click(chromedp.CSS(`#tokens tr[data-id="`+id+`"] button.danger`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#tokens tr[data-id="`+id+`"] button.danger`)))
	var list struct {
		Tokens []struct {
			ID        string `json:"id"`
			RevokedAt string `json:"revoked_at"`
		} `json:"tokens"`
	}
	api(t, srv, http.MethodGet, "/v1/tokens", nil, &list)
	for _, tk := range list.Tokens {
		if tk.ID == id && tk.RevokedAt == "" {
			t.Errorf("the token revoked in the page is live in the API")
		}
	}
}

func TestConsoleLive(t *testing.T) {
	srv := servertest.Start(t)
	ingest(t, srv, event(map[string]any{"id": "old-1"}))
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)
	b.open(t, "/events?live=1&source=shell")
	b.do(t, chromedp.WaitVisible(chromedp.CSS(".live-status")))
	time.Sleep(600 * time.Millisecond) // the stream is open and has polled
	ingest(t, srv, event(map[string]any{"id": "live-1", "description": "arrives while watching"}), event(map[string]any{"id": "live-other", "source": "mcp-tool"}))
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!document.querySelector('table.events tr[data-id="live-1"]')`, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("the event did not appear within 2s of its ingest: %v", err)
	}
	if got := b.pageIDs(t); !slices.Equal(got, []string{"live-1", "old-1"}) {
		t.Errorf("live rows %v, want the new shell event above the old one and no mcp-tool event", got)
	}
}

// seedRealistic stores n events of all seven surfaces, two orgs and a dozen
// agents over the last 24 hours, as storetest generates them.
func seedRealistic(t *testing.T, srv *servertest.Server, n int) {
	t.Helper()
	evs := storetest.Events(7, n, time.Now().Add(-24*time.Hour), 24*time.Hour-time.Minute)
	for len(evs) > 0 {
		k := min(1000, len(evs))
		body, err := json.Marshal(evs[:k])
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Accepted int `json:"accepted"`
		}
		api(t, srv, http.MethodPost, "/v1/events", body, &res)
		if res.Accepted != k {
			t.Fatalf("accepted %d of %d generated events", res.Accepted, k)
		}
		evs = evs[k:]
	}
}

// TestConsoleScreenshots writes every page at both sizes, light and dark,
// to testdata/screenshots (or $AGENTTRAIL_SCREENSHOTS), and checks that no
// page scrolls sideways at either size.
func TestConsoleScreenshots(t *testing.T) {
	srv := servertest.Start(t)
	seedRealistic(t, srv, 3000)
	seedVaried(t, srv, 130)
	seedGaps(t, srv, "agent-hb", "prod-1")
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleAdmin, server.AllOrgs)
	dir := screenshotDir(t)
	pages := map[string]string{
		"events": "/events?since=7d", "detail": "/events?since=7d&event=ev-0002", "overview": "/overview?since=24h",
		"cost": "/cost?since=7d", "gaps": "/gaps?since=1h", "tokens": "/tokens",
	}
	for _, size := range [][2]int64{{1280, 800}, {390, 844}} {
		for _, scheme := range []string{"light", "dark"} {
			b.do(t, chromedp.EmulateViewport(size[0], size[1]), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
				return err
			}))
			for name, path := range pages {
				b.open(t, path)
				if scheme == "dark" && !eval[bool](t, b, `matchMedia('(prefers-color-scheme: dark)').matches`) {
					t.Fatalf("dark mode is not emulated")
				}
				if w := eval[int64](t, b, `document.documentElement.scrollWidth`); w > size[0] {
					t.Errorf("%s at %dx%d is %d px wide: it scrolls sideways", name, size[0], size[1], w)
				}
				png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(dir, fmt.Sprintf("%s-%dx%d-%s.png", name, size[0], size[1], scheme))
				if err := os.WriteFile(file, png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Logf("screenshots in %s", dir)
}

// dayZone returns a time zone other than UTC whose current day began at
// least three hours ago, so the events seedVaried puts in the last two
// hours all fall in a daily budget's current period whatever the time of
// the run (in Tokyo just after midnight, none of them would).
func dayZone(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"Asia/Tokyo", "Europe/Berlin", "America/New_York"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().In(loc).Hour() >= 3 {
			return name
		}
	}
	t.Fatal("no candidate time zone is three hours into its day")
	return ""
}

// TestConsoleCostBudgets: the Cost page lists each budget in its current
// period with what the API says is spent, reserved and remaining.
func TestConsoleCostBudgets(t *testing.T) {
	srv := servertest.Start(t)
	seedVaried(t, srv, 40)
	api(t, srv, http.MethodPut, "/v1/budgets/all-llm", []byte(`{"org":"default","limit_usd":5,"period":"total"}`), nil)
	api(t, srv, http.MethodPut, "/v1/budgets/gpt5-daily", []byte(`{"org":"default","model":"gpt-5","limit_usd":1.5,"period":"day","timezone":"`+dayZone(t)+`"}`), nil)
	api(t, srv, http.MethodPost, "/v1/budgets/reserve", []byte(`{"id":"call-1","org":"default","model":"gpt-5","amount_usd":0.25,"ttl_seconds":600}`), nil)
	b := newBrowser(t, srv)
	b.signIn(t, server.RoleRead, server.AllOrgs)
	b.open(t, "/cost?since=7d")

	var st struct {
		Budgets []struct {
			Name         string
			SpentUSD     float64 `json:"spent_usd"`
			ReservedUSD  float64 `json:"reserved_usd"`
			RemainingUSD float64 `json:"remaining_usd"`
			ResetsAt     string  `json:"resets_at"`
		}
	}
	api(t, srv, http.MethodGet, "/v1/budgets/status", nil, &st)
	rows := eval[map[string][]string](t, b, `Object.fromEntries([...document.querySelectorAll('#budgets table.budgets tbody tr')].map((r) => [r.dataset.name,
		[r.querySelector('[data-spent]').dataset.spent, r.querySelector('[data-reserved]').dataset.reserved, r.querySelector('[data-remaining]').dataset.remaining, r.lastChild.textContent]]))`)
	if len(rows) != len(st.Budgets) || len(rows) != 2 {
		t.Fatalf("the Cost page lists budgets %v, the API %+v", rows, st.Budgets)
	}
	for _, x := range st.Budgets {
		r := rows[x.Name]
		if len(r) != 4 {
			t.Errorf("budget %s is not on the page", x.Name)
			continue
		}
		var spent, reserved, remaining float64
		fmt.Sscan(r[0], &spent)
		fmt.Sscan(r[1], &reserved)
		fmt.Sscan(r[2], &remaining)
		if !close(spent, x.SpentUSD) || !close(reserved, x.ReservedUSD) || !close(remaining, x.RemainingUSD) {
			t.Errorf("budget %s shows spent %s reserved %s remaining %s, the API %+v", x.Name, r[0], r[1], r[2], x)
		}
		if x.SpentUSD == 0 || x.ReservedUSD != 0.25 {
			t.Errorf("budget %s: spent $%g reserved $%g; the test needs both", x.Name, x.SpentUSD, x.ReservedUSD)
		}
		if (x.ResetsAt == "") != (r[3] == "never") {
			t.Errorf("budget %s resets %q on the page, at %q in the API", x.Name, r[3], x.ResetsAt)
		}
	}
	// Reserved includes the proxies' allowances: the column says so.
	title := eval[string](t, b, `[...document.querySelectorAll('#budgets table.budgets thead th')].find((th) => th.textContent === 'Reserved').title`)
	if !strings.Contains(title, "allowances") {
		t.Errorf("the Reserved column's title is %q, want it to say allowances are in it", title)
	}
}
