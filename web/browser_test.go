package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/servertest"
)

// chromiumPath is Debian's chromium, which .ci/run installs when missing.
const chromiumPath = "/usr/bin/chromium"

// hooks runs before any of the console's scripts: every way a script
// injected through event data could make itself seen is recorded in
// window.__pwned, and confirm() answers yes so revoking can be driven.
const hooks = `
window.__pwned = [];
for (const k of ['alert', 'prompt', 'print']) window[k] = (...a) => window.__pwned.push(k + ':' + a.join(' '));
window.confirm = () => true;
document.addEventListener('securitypolicyviolation', (e) => window.__pwned.push('csp:' + e.violatedDirective + ' ' + e.blockedURI));
`

// browser is a headless chromium driven through the DevTools protocol,
// with the console's messages and uncaught exceptions collected.
type browser struct {
	ctx context.Context
	srv *servertest.Server

	mu      sync.Mutex
	console []string
}

func newBrowser(t testing.TB, srv *servertest.Server) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the console tests need Debian's chromium at %s (apt-get install chromium; .ci/run does): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{ctx: ctx, srv: srv}
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: hooks})
		return err
	})); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs actions within a minute.
func (b *browser) do(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v (console: %v)", err, b.messages())
	}
}

func (b *browser) messages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// ready waits until the page has rendered from its URL: the shell sets
// aria-busy on main while a page loads.
func ready() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		for {
			busy, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById('main') && document.getElementById('main').getAttribute('aria-busy')) || 'true'`))
			if err != nil {
				return err
			}
			if busy == "false" {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// open navigates to path and waits for the page.
func (b *browser) open(t testing.TB, path string) {
	t.Helper()
	b.do(t, chromedp.Navigate(b.srv.URL+path), ready())
}

// eval evaluates js and returns its value.
func eval[T any](t testing.TB, b *browser, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v (console: %v)", js, err, b.messages())
	}
	return v
}

// path returns the page's path and query.
func (b *browser) path(t testing.TB) string {
	t.Helper()
	return eval[string](t, b, `location.pathname + location.search`)
}

// signIn signs the browser in with a one-time link of role.
func (b *browser) signIn(t testing.TB, role server.Role, org string) {
	t.Helper()
	b.open(t, "/events#login="+loginCode(t, b.srv, role, org))
	who := eval[string](t, b, `document.querySelector('.who-name') ? document.querySelector('.who-name').textContent : ''`)
	if !strings.Contains(who, string(role)) {
		text := eval[string](t, b, `document.body.innerText`)
		t.Fatalf("after the sign-in link the header shows %q, want a %s session; page: %s", who, role, text)
	}
}

func loginCode(t testing.TB, srv *servertest.Server, role server.Role, org string) string {
	t.Helper()
	link, err := app.SignInURL("", srv.DataDir, role, org, "tester")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(link, "/#login=")
}

// api calls the server as its admin.
func api(t testing.TB, srv *servertest.Server, method, path string, body []byte, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// ingest posts events (maps) and fails unless every one was accepted.
func ingest(t testing.TB, srv *servertest.Server, events ...map[string]any) {
	t.Helper()
	body, _ := json.Marshal(events)
	var res struct {
		Accepted int `json:"accepted"`
		Rejected []struct {
			Index int    `json:"index"`
			Error string `json:"error"`
		} `json:"rejected"`
	}
	api(t, srv, http.MethodPost, "/v1/events", body, &res)
	if res.Accepted != len(events) {
		t.Fatalf("ingest: accepted %d of %d: %+v", res.Accepted, len(events), res.Rejected)
	}
}

// event is a valid event with fields set over a default.
func event(fields map[string]any) map[string]any {
	ev := map[string]any{"actor_type": "agent", "actor_id": "agent-1", "source": "shell", "action": "shell_exec", "result": "success"}
	for k, v := range fields {
		ev[k] = v
	}
	return ev
}

// pageIDs returns the ids of the events table's rows.
func (b *browser) pageIDs(t testing.TB) []string {
	t.Helper()
	return eval[[]string](t, b, `[...document.querySelectorAll('table.events tbody tr')].map((r) => r.dataset.id)`)
}

type apiPage struct {
	Events []struct {
		ID string `json:"id"`
	} `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

func (p apiPage) ids() []string {
	var out []string
	for _, e := range p.Events {
		out = append(out, e.ID)
	}
	return out
}

// query encodes pairs as a query string.
func query(pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	return v.Encode()
}

// screenshotDir is where the screenshot test writes; it is not committed.
func screenshotDir(t testing.TB) string {
	dir := os.Getenv("AGENTTRAIL_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ago(d time.Duration) string { return time.Now().Add(-d).UTC().Format(time.RFC3339Nano) }
