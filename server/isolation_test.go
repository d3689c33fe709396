package server

import (
	"archive/zip"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// marker is in every globex event's description and metadata, and in no
// request: an answer holding it holds a globex event.
const marker = "zqmarker"

// seedOrgs stores events of acme and of globex (one id in both), with
// heartbeats and a producer with a sequence hole in each, through each
// org's ingest token.
func seedOrgs(t *testing.T, se *secEnv) {
	t.Helper()
	now := time.Now().UTC()
	ago := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339Nano) }
	var acme, globex []string
	for i, seq := range []int{1, 2, 4} {
		acme = append(acme, eventJSON(map[string]any{"id": fmt.Sprintf("a-%d", i), "actor_id": "agent-ac", "project": "proj-ac",
			"producer_id": "prod-ac", "producer_seq": seq, "time": ago(time.Duration(i+1) * time.Hour), "description": "ac plan"}))
		globex = append(globex, eventJSON(map[string]any{"id": fmt.Sprintf("g-%d", i), "actor_id": "agent-gx", "project": "proj-gx",
			"producer_id": "prod-gx", "producer_seq": seq, "time": ago(time.Duration(i+1) * time.Hour), "resource_id": "db-gx",
			"status_code": 403, "result": "failure", "description": "gx plan " + marker, "metadata": map[string]any{"note": marker}}))
	}
	for i := range 3 {
		acme = append(acme, eventJSON(map[string]any{"actor_id": "agent-ac", "source": "agent", "action": "heartbeat", "time": ago(time.Duration(3*i+1) * time.Minute)}))
		globex = append(globex, eventJSON(map[string]any{"actor_id": "agent-gx", "source": "agent", "action": "heartbeat", "description": marker, "time": ago(time.Duration(3*i+1) * time.Minute)}))
	}
	acme = append(acme, eventJSON(map[string]any{"id": "shared-1", "description": "ac shared"}))
	globex = append(globex, eventJSON(map[string]any{"id": "shared-1", "description": "gx shared " + marker, "metadata": map[string]any{"note": marker}}))
	if got := se.ingestAs(t, "acme-ingest", acme...); got.Accepted != len(acme) {
		t.Fatalf("seeding acme: %+v", got)
	}
	if got := se.ingestAs(t, "globex-ingest", globex...); got.Accepted != len(globex) {
		t.Fatalf("seeding globex: %+v", got)
	}
}

// isolationFilters are filter combinations a reader of acme tries, each
// meant to reach globex events.
var isolationFilters = []string{
	"", "org=globex", "org=acme&org=globex", "org=globex&org=globex", "q=gx+plan", "q=" + "GX",
	"actor_id=agent-gx", "resource_id=db-gx", "project=proj-gx", "producer_id=prod-gx",
	"source=agent&org=globex", "status_code=403", "result=failure", "action=shell_exec&org=globex",
	"until=1m&org=globex", "org=default",
}

// evidence lists what in an answer belongs to an org other than acme.
type evidence func(t *testing.T, body []byte) []string

// isolationRow is one read endpoint: how to ask it with a filter, and
// how to find other orgs' data in its answer. A new read endpoint is covered
// by adding a row; TestIsolationCoversEveryReadRoute fails until it is.
type isolationRow struct {
	route  string // the pattern in routeTable
	path   func(filter string) string
	stream bool // an endless answer: read for a moment, then hang up
	find   evidence
	// refusable: a reader of acme may be answered 400 or 404 (nothing of
	// globex either way): the integrity routes are about one org, and
	// refuse a filter that names several or answer none for another.
	refusable bool
	// orgless: the answer holds no org's data at all (the verifier key),
	// so root finding no globex data in it is right.
	orgless bool
}

func isolationRows() []isolationRow {
	with := func(base string) func(string) string {
		return func(f string) string {
			if f == "" {
				return base
			}
			return base + "&" + f
		}
	}
	return []isolationRow{
		{route: "/v1/events", path: with("/v1/events?limit=200&sort=seq"), find: eventsPage},
		{route: "/v1/events", path: with("/v1/events?limit=200"), find: eventsPage},
		{route: "/v1/events/{id}", path: func(f string) string { return "/v1/events/g-1?" + orgPart(f) }, find: oneEvent},
		{route: "/v1/events/{id}", path: func(f string) string { return "/v1/events/shared-1?" + orgPart(f) }, find: oneEvent},
		{route: "/v1/aggregate", path: with("/v1/aggregate?by=org"), find: bucketKeys},
		{route: "/v1/aggregate", path: with("/v1/aggregate?by=actor_id"), find: bucketKeys},
		{route: "/v1/aggregate", path: with("/v1/aggregate?by=project"), find: bucketKeys},
		{route: "/v1/timeseries", path: with("/v1/timeseries?interval=hour&by=org&since=24h"), find: seriesKeys},
		{route: "/v1/timeseries", path: with("/v1/timeseries?interval=day&by=actor_id"), find: seriesKeys},
		{route: "/v1/gaps", path: with("/v1/gaps?since=24h"), find: rawGX},
		{route: "/v1/gaps", path: with("/v1/gaps?since=24h&interval=3m"), find: rawGX},
		{route: "/v1/export", path: with("/v1/export?format=ndjson"), find: ndjsonEvents},
		{route: "/v1/export", path: with("/v1/export?format=csv"), find: rawMarker},
		{route: "/v1/export", path: with("/v1/export?format=ocsf"), find: rawMarker},
		{route: "/v1/export", path: with("/v1/export?format=cef"), find: rawMarker},
		{route: "/v1/stream", path: with("/v1/stream?since=24h"), stream: true, find: sseEvents},
		// Budgets take only an org parameter; one budget is looked up in
		// globex unless the filter names another org.
		{route: "/v1/budgets", path: func(f string) string { return "/v1/budgets?" + orgPart(f) }, find: rawGX},
		{route: "/v1/budgets/status", path: func(f string) string { return "/v1/budgets/status?" + orgPart(f) }, find: rawGX},
		{route: "/v1/budgets/{name}", path: func(f string) string { return "/v1/budgets/gx-cap?" + cmp.Or(orgPart(f), "org=globex") }, find: rawGX},
		// The integrity routes: one org each, globex unless the filter
		// names orgs. The proof signs the checkpoint the others read.
		{route: "/v1/integrity/proof/{id}", path: func(f string) string { return "/v1/integrity/proof/g-1?" + oneOrg(f) }, find: rawOrigin, refusable: true},
		{route: "/v1/integrity/checkpoint", path: func(f string) string { return "/v1/integrity/checkpoint?" + oneOrg(f) }, find: rawOrigin, refusable: true},
		{route: "/v1/integrity/checkpoints", path: func(f string) string { return "/v1/integrity/checkpoints?" + oneOrg(f) }, find: rawOrigin, refusable: true},
		{route: "/v1/integrity/consistency", path: func(f string) string { return "/v1/integrity/consistency?from=1&" + oneOrg(f) }, find: rawOrgGX, refusable: true},
		{route: "/v1/integrity/bundle", path: func(f string) string {
			if !strings.Contains(f, "org=") {
				f = strings.TrimPrefix(f+"&org=globex", "&")
			}
			return "/v1/integrity/bundle?" + f
		}, find: bundleEvidence, refusable: true},
		{route: "/v1/integrity/key", path: func(string) string { return "/v1/integrity/key" }, find: rawMarker, orgless: true},
	}
}

// oneOrg keeps the org parameters of a filter, or names globex when it has
// none: the integrity routes read one org's tree.
func oneOrg(f string) string {
	if o := orgPart(f); o != "" {
		return o
	}
	return "org=globex"
}

// rawOrigin finds globex's checkpoint origin line in an answer.
func rawOrigin(t *testing.T, body []byte) []string {
	if bytes.Contains(body, []byte("agenttrail/globex")) {
		return []string{"agenttrail/globex"}
	}
	return nil
}

// rawOrgGX finds globex named as the org of an answer.
func rawOrgGX(t *testing.T, body []byte) []string {
	if bytes.Contains(body, []byte(`"org":"globex"`)) {
		return []string{`"org":"globex"`}
	}
	return nil
}

// bundleEvidence finds globex in a bundle: its checkpoint, or its events.
func bundleEvidence(t *testing.T, body []byte) []string {
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		if bytes.Contains(body, []byte(marker)) {
			return []string{marker}
		}
		return nil
	}
	var found []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, []byte("agenttrail/globex")) || bytes.Contains(b, []byte(marker)) || bytes.Contains(b, []byte(`"org":"globex"`)) {
			found = append(found, f.Name)
		}
	}
	return found
}

// orgPart keeps only the org parameters of a filter: GET /v1/events/{id}
// takes no other.
func orgPart(f string) string {
	var keep []string
	for _, kv := range strings.Split(f, "&") {
		if strings.HasPrefix(kv, "org=") {
			keep = append(keep, kv)
		}
	}
	return strings.Join(keep, "&")
}

func eventEvidence(e agenttrail.Event, raw []byte) []string {
	var out []string
	if e.Org != "acme" {
		out = append(out, "event "+e.ID+" of org "+e.Org)
	}
	if bytes.Contains(raw, []byte(marker)) {
		out = append(out, "event "+e.ID+" carries the globex marker")
	}
	return out
}

func eventsPage(t *testing.T, body []byte) []string {
	var page struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	var out []string
	for _, raw := range page.Events {
		var e agenttrail.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, eventEvidence(e, raw)...)
	}
	return out
}

func oneEvent(t *testing.T, body []byte) []string {
	var p wire.Problem
	if json.Unmarshal(body, &p) == nil && p.Status == http.StatusNotFound {
		return nil
	}
	var e agenttrail.Event
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return eventEvidence(e, body)
}

func ndjsonEvents(t *testing.T, body []byte) []string {
	var out []string
	for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e agenttrail.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("decoding %s: %v", line, err)
		}
		out = append(out, eventEvidence(e, line)...)
	}
	return out
}

func sseEvents(t *testing.T, body []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		var e agenttrail.Event
		if err := json.Unmarshal(data, &e); err != nil {
			continue // a stream cut mid-line
		}
		out = append(out, eventEvidence(e, data)...)
	}
	return append(out, rawMarker(t, body)...)
}

// globexKeys are the values of globex events a bucket key could show.
var globexKeys = []string{"globex", "agent-gx", "proj-gx", "globex-read", "globex-ingest"}

func bucketKeys(t *testing.T, body []byte) []string {
	var resp wire.Aggregate
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	var out []string
	for _, b := range resp.Buckets {
		if slices.Contains(globexKeys, b.Key) {
			out = append(out, "bucket "+b.Key)
		}
	}
	return out
}

func seriesKeys(t *testing.T, body []byte) []string {
	var resp wire.Timeseries
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	var out []string
	for _, b := range resp.Buckets {
		for k := range b.By {
			if slices.Contains(globexKeys, k) {
				out = append(out, "series key "+k)
			}
		}
	}
	return out
}

// rawGX finds globex's actor or producer in an answer that holds no event
// (gaps): acme's own audit events echo the filters it tried, but they
// have no heartbeats or producer sequence.
func rawGX(t *testing.T, body []byte) []string {
	if bytes.Contains(body, []byte("agent-gx")) || bytes.Contains(body, []byte("prod-gx")) {
		return []string{"globex actor or producer in " + string(body)}
	}
	return rawMarker(t, body)
}

func rawMarker(t *testing.T, body []byte) []string {
	if bytes.Contains(body, []byte(marker)) {
		return []string{"the globex marker"}
	}
	return nil
}

// read GETs path with the named token. A stream is read for a moment
// (until shortly after its first events, the backlog since "since", arrive)
// and then closed.
func (se *secEnv) read(t *testing.T, token, path string, stream bool) (int, []byte) {
	t.Helper()
	status, body, err := se.readE(token, path, stream)
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// readE is read for use off the test's goroutine.
func (se *secEnv) readE(token, path string, stream bool) (int, []byte, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if stream {
		ctx, cancel = context.WithTimeout(ctx, 600*time.Millisecond)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, se.url+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header = se.as(token)
	resp, err := se.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s as %s: %w", path, token, err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if stream {
		body = &cutAfterData{r: resp.Body, cancel: cancel}
	}
	b, err := io.ReadAll(body)
	if err != nil && !(stream && ctx.Err() != nil) {
		return 0, nil, fmt.Errorf("GET %s as %s: reading: %w", path, token, err)
	}
	return resp.StatusCode, b, nil
}

// testIsolation is the acceptance test of org isolation on one backend: a
// read token of acme finds nothing of globex through any read endpoint and
// filter, while a token of every org does find it (so the checks can fail).
func testIsolation(t *testing.T, b backend) {
	se := newSecEnv(t, secOptions{backend: b})
	seedOrgs(t, se)
	// A budget of globex whose scopes name globex's agent and project.
	if r := se.do(t, http.MethodPut, "/v1/budgets/gx-cap", se.as("root"),
		[]byte(`{"org":"globex","actor_id":"agent-gx","project":"proj-gx","limit_usd":5,"period":"day"}`)); r.status != http.StatusOK {
		t.Fatalf("PUT globex budget = %d: %s", r.status, r.body)
	}
	for _, row := range isolationRows() {
		path := row.path("")
		status, body := se.read(t, "root", path, row.stream)
		if status != http.StatusOK {
			t.Fatalf("GET %s as root = %d: %s", path, status, body)
		}
		if len(row.find(t, body)) == 0 && row.route != "/v1/events/{id}" && !row.orgless {
			t.Errorf("GET %s as root found nothing of globex: the check cannot fail\n%s", path, body)
		}
	}
	for _, row := range isolationRows() {
		// A row's filters are tried at once: a stream that finds nothing
		// is only over when its read times out.
		type answer struct {
			status int
			body   []byte
			err    error
		}
		answers := make([]answer, len(isolationFilters))
		var wg sync.WaitGroup
		// Within the token's caps on open streams and exports, with room
		// for the ones the server has yet to see closed.
		sem := make(chan struct{}, min(streamCaps.perToken, exportCaps.perToken)/2)
		for i, f := range isolationFilters {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				a := &answers[i]
				for range 100 {
					if a.status, a.body, a.err = se.readE("acme-read", row.path(f), row.stream); a.status != http.StatusTooManyRequests {
						break
					}
					time.Sleep(50 * time.Millisecond) // a closed one not yet given back
				}
			})
		}
		wg.Wait()
		for i, f := range isolationFilters {
			path := row.path(f)
			status, body, err := answers[i].status, answers[i].body, answers[i].err
			if err != nil {
				t.Fatal(err)
			}
			refused := status == http.StatusNotFound && strings.Contains(row.route, "{") ||
				row.refusable && (status == http.StatusNotFound || status == http.StatusBadRequest)
			if status != http.StatusOK && !refused {
				t.Errorf("GET %s as acme-read = %d, want 200: %s", path, status, body)
				continue
			}
			if found := row.find(t, body); len(found) > 0 {
				t.Errorf("GET %s as acme-read shows globex data: %v", path, found)
			}
		}
	}
	// The globex event of an id both orgs use is not acme's to see.
	if status, body := se.read(t, "acme-read", "/v1/events/g-1", false); status != http.StatusNotFound {
		t.Errorf("GET /v1/events/g-1 (globex) as acme-read = %d, want 404: %s", status, body)
	}
	if status, body := se.read(t, "acme-read", "/v1/events/shared-1", false); status != http.StatusOK || !bytes.Contains(body, []byte(`"ac shared"`)) {
		t.Errorf("GET /v1/events/shared-1 as acme-read = %d %s, want acme's event", status, body)
	}
	// A scoped admin is scoped too.
	if status, body := se.read(t, "acme-admin", "/v1/aggregate?by=org&org=globex", false); status != http.StatusOK || len(bucketKeys(t, body)) > 0 {
		t.Errorf("GET /v1/aggregate?by=org&org=globex as acme-admin = %d %s, want no globex bucket", status, body)
	}
}

func TestIsolation(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { testIsolation(t, b) })
	}
}

// TestIsolationCoversEveryReadRoute fails when a read route has no row in
// isolationRows: a new endpoint must show it keeps orgs apart.
func TestIsolationCoversEveryReadRoute(t *testing.T) {
	covered := map[string]bool{}
	for _, row := range isolationRows() {
		covered[row.route] = true
	}
	e := newEnv(t, options{})
	for _, rt := range e.srv.routes {
		// Routes of other roles show no events: the token routes keep
		// orgs apart in TestTokensAPIScoped, the session routes concern
		// the caller's own credential.
		if rt.need == RoleRead && !covered[rt.path] {
			t.Errorf("read route %s %s has no row in isolationRows", rt.method, rt.path)
		}
	}
}

// cutAfterData ends a stream read shortly after the first event arrives:
// the backlog comes in one write, and waiting longer only waits for polls.
type cutAfterData struct {
	r      io.Reader
	cancel context.CancelFunc
	armed  bool
}

func (c *cutAfterData) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if !c.armed && bytes.Contains(p[:n], []byte("\ndata: ")) {
		c.armed = true
		time.AfterFunc(50*time.Millisecond, c.cancel)
	}
	return n, err
}
