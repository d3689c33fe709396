package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/export"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/agenttrail/agenttrail/wire"
)

// exportedIDs reads an export body in format and returns the org/id of each
// event in it, in order.
func exportedIDs(t *testing.T, format string, body []byte) []string {
	t.Helper()
	var out []string
	switch format {
	case export.NDJSON:
		var last int64
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var e agenttrail.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("ndjson line %q: %v", sc.Bytes(), err)
			}
			if e.Seq <= last {
				t.Fatalf("ndjson: seq %d after %d, want commit order", e.Seq, last)
			}
			last = e.Seq
			out = append(out, e.Org+"/"+e.ID)
		}
	case export.CSV:
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("csv: %v", err)
		}
		if len(rows) == 0 || !slices.Equal(rows[0], export.CSVHeader()) {
			t.Fatalf("csv header = %v", rows)
		}
		for _, r := range rows[1:] {
			out = append(out, export.UnneutralizeCell(r[13])+"/"+export.UnneutralizeCell(r[0]))
		}
	case export.OCSF:
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var o export.OCSFEvent
			if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
				t.Fatalf("ocsf line: %v", err)
			}
			out = append(out, o.Metadata.TenantUID+"/"+o.Metadata.UID)
		}
	case export.CEF:
		org := regexp.MustCompile(` cs5=(\S+)`)
		id := regexp.MustCompile(`\|externalId=(\S+)`)
		for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
			if line == "" {
				continue
			}
			o, i := org.FindStringSubmatch(line), id.FindStringSubmatch(line)
			if !strings.HasPrefix(line, "CEF:0|agenttrail|agenttrail|") || o == nil || i == nil {
				t.Fatalf("cef line %q", line)
			}
			out = append(out, o[1]+"/"+i[1])
		}
	}
	return out
}

// matching returns the org/ids of the events query v matches, sorted.
func matching(t *testing.T, events []agenttrail.Event, v url.Values) []string {
	t.Helper()
	f, err := wire.ParseFilter(v, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range events {
		if f.Match(&events[i]) {
			out = append(out, events[i].Org+"/"+events[i].ID)
		}
	}
	slices.Sort(out)
	return out
}

func TestExportFormats(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	events := dataset(t, e, 11, 2500) // three store pages
	for _, format := range export.Formats() {
		for _, v := range []url.Values{
			{},
			{"source": {"llm-proxy", "shell"}, "org": {"acme"}},
			{"result": {"failure"}, "since": {"36h"}},
		} {
			q := url.Values{"format": {format}}
			for k, vals := range v {
				q[k] = vals
			}
			r := e.get(t, "/v1/export?"+q.Encode())
			if r.status != http.StatusOK {
				t.Fatalf("GET /v1/export?%s = %d: %s", q.Encode(), r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != export.ContentType(format) {
				t.Errorf("format %s: Content-Type %q, want %q", format, ct, export.ContentType(format))
			}
			if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="agenttrail-`) || !strings.HasSuffix(cd, "."+export.Extension(format)+`"`) {
				t.Errorf("format %s: Content-Disposition %q", format, cd)
			}
			got := exportedIDs(t, format, r.body)
			want := matching(t, events, v)
			if len(v) == 0 && len(got) != len(events) {
				t.Errorf("format %s: exported %d events, want all %d", format, len(got), len(events))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("format %s, %v: exported %d events, want %d (each once)", format, v, len(got), len(want))
			}
		}
	}
}

func TestExportDefaultsToNDJSON(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	events := dataset(t, e, 12, 30)
	r := e.get(t, "/v1/export")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("GET /v1/export = %d %q", r.status, r.header.Get("Content-Type"))
	}
	if got := exportedIDs(t, export.NDJSON, r.body); len(got) != len(events) {
		t.Errorf("exported %d events, want %d", len(got), len(events))
	}
}

func TestExportParamErrors(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	for _, c := range []struct{ query, field string }{
		{"format=xml", "format"},
		{"format=csv&format=cef", "format"},
		{"format=", "format"},
		{"format=csv&limt=5", "limt"},
		{"limit=10", "limit"},
		{"cursor=abc", "cursor"},
		{"result=maybe", "result"},
	} {
		p := problemFrom(t, "GET /v1/export?"+c.query, e.get(t, "/v1/export?"+c.query), http.StatusBadRequest)
		if p.Field != c.field || !strings.Contains(p.Detail, c.field) {
			t.Errorf("GET /v1/export?%s: field %q detail %q, want %q named", c.query, p.Field, p.Detail, c.field)
		}
	}
}

func TestExportOrgScope(t *testing.T) {
	tk := tokens{
		"acme":  {Name: "acme-reader", Role: RoleRead, Org: "acme"},
		"admin": {Name: "admin", Role: RoleAdmin, Org: AllOrgs},
		"ing":   {Name: "ingester", Role: RoleIngest, Org: AllOrgs},
	}
	e := newEnv(t, options{now: testNow, auth: tk})
	events := storetestEvents(1200)
	r := e.do(t, http.MethodPost, "/v1/events", http.Header{"Authorization": {"Bearer admin"}, "Content-Type": {"application/x-ndjson"}}, ndjson(t, events))
	if r.status != http.StatusOK {
		t.Fatalf("ingest = %d: %s", r.status, r.body)
	}
	get := func(token, query string) response {
		return e.do(t, http.MethodGet, "/v1/export?format=csv&"+query, http.Header{"Authorization": {"Bearer " + token}}, nil)
	}
	acme := matching(t, events, url.Values{"org": {"acme"}})
	for _, q := range []string{"", "org=acme", "org=acme&org=globex"} {
		r := get("acme", q)
		got := exportedIDs(t, export.CSV, r.body)
		slices.Sort(got)
		if r.status != http.StatusOK || !slices.Equal(got, acme) {
			t.Errorf("acme token, %q: %d, %d events, want 200 and acme's %d", q, r.status, len(got), len(acme))
		}
	}
	if r := get("acme", "org=globex"); r.status != http.StatusOK || len(exportedIDs(t, export.CSV, r.body)) != 0 {
		t.Errorf("acme token, org=globex: %d, %d events; want 200 and none", r.status, len(exportedIDs(t, export.CSV, r.body)))
	}
	if r := get("admin", ""); len(exportedIDs(t, export.CSV, r.body)) != len(events) {
		t.Errorf("admin token: %d events, want %d", len(exportedIDs(t, export.CSV, r.body)), len(events))
	}
	problemFrom(t, "ingest token", get("ing", ""), http.StatusForbidden)
	problemFrom(t, "no token", get("", ""), http.StatusUnauthorized)
}

// hookStore is the real store with a hook run before each Query, which may
// inject a failure.
type hookStore struct {
	agenttrail.Store
	before func(q agenttrail.Query) error
}

func (s *hookStore) Query(ctx context.Context, q agenttrail.Query) (agenttrail.Page, error) {
	if err := s.before(q); err != nil {
		return agenttrail.Page{}, err
	}
	return s.Store.Query(ctx, q)
}

// exportQuery reports whether q is one of an export's pages (the tests
// below filter on every result, which the export's own head lookup does
// not) and which: 1 for the first.
func exportPageOf(q agenttrail.Query) int {
	if len(q.Filter.Result) == 0 {
		return 0
	}
	if q.After == nil {
		return 1
	}
	return 2
}

const allResults = "result=success&result=failure&result=denied&result=error"

func TestExportStoreFailure(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	dataset(t, e, 13, 1500)
	var failOn atomic.Int64 // 0: every query; n: the export's page n
	hs := &hookStore{Store: e.store, before: func(q agenttrail.Query) error {
		if n := failOn.Load(); n == 0 || int64(exportPageOf(q)) == n {
			return errors.New("disk on fire")
		}
		return nil
	}}
	s := New(Config{Store: hs, Ingest: e.pipeline, Now: e.clock.Now})
	srv := newTestHTTPServer(t, s.Handler())
	hc := testClient(t)

	// Before the first byte: a problem.
	for _, n := range []int64{0, 1} {
		failOn.Store(n)
		resp, err := hc.Get(srv + "/v1/export?" + allResults)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		problemFrom(t, "export, store failing", response{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusInternalServerError)
	}

	// After it: a cut body, never a complete-looking one.
	failOn.Store(2)
	resp, err := hc.Get(srv + "/v1/export?" + allResults)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !errors.Is(err, io.ErrUnexpectedEOF) || len(body) == 0 {
		t.Errorf("export, store failing on page 2: %d, read error %v after %d bytes; want 200 and an unexpected EOF", resp.StatusCode, err, len(body))
	}
}

// TestExportSnapshot commits events while an export runs and wants the
// export to end at what was committed when it began.
func TestExportSnapshot(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	events := dataset(t, e, 14, 1500)
	var once sync.Once
	hs := &hookStore{Store: e.store, before: func(q agenttrail.Query) error {
		if exportPageOf(q) == 1 {
			once.Do(func() { e.ingest(t, storetest.Events(15, 1200, testNow.Add(-time.Hour), time.Minute)) })
		}
		return nil
	}}
	s := New(Config{Store: hs, Ingest: e.pipeline, Now: e.clock.Now})
	srv := newTestHTTPServer(t, s.Handler())
	resp, err := testClient(t).Get(srv + "/v1/export?" + allResults)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("export = %d, %v", resp.StatusCode, err)
	}
	got := exportedIDs(t, export.NDJSON, body)
	slices.Sort(got)
	if want := matching(t, events, nil); !slices.Equal(got, want) {
		t.Errorf("export during ingest: %d events, want the %d committed before it began", len(got), len(want))
	}
	var all wire.Page
	e.getJSON(t, "/v1/events?limit=1&sort=seq&since=2h", &all)
	if len(all.Events) == 0 {
		t.Fatal("the events committed during the export are not stored")
	}
}
