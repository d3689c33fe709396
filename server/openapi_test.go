package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// openAPIDoc is the part of an OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParam  `json:"parameters"`
		Responses  map[string]any           `json:"responses"`
		Schemas    map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPIOp struct {
	Parameters []openAPIParam `json:"parameters"`
	Responses  map[string]any `json:"responses"`
}

type openAPISchema struct {
	Properties map[string]any `json:"properties"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	return doc
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, options{now: testNow})
	r := e.get(t, "/openapi.json")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" || string(r.body) != string(openAPI) {
		t.Errorf("GET /openapi.json = %d %q, want 200 application/json with the embedded document", r.status, r.header.Get("Content-Type"))
	}
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	s := New(Config{Store: nopStore{}, Ingest: nopWriter{}})
	var served, documented []string
	for _, rt := range s.routes {
		served = append(served, rt.method+" "+rt.path)
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("routes served %v, documented %v; they must be the same", served, documented)
	}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op openAPIOp
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if op.Responses["200"] == nil {
				t.Errorf("%s %s documents no 200 answer", method, path)
			}
		}
	}
	// Every reference resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && !resolves(doc, ref) {
				t.Errorf("$ref %q does not resolve", ref)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	_ = json.Unmarshal(openAPI, &all)
	walk(all)
}

func resolves(doc openAPIDoc, ref string) bool {
	kind, name, ok := strings.Cut(strings.TrimPrefix(ref, "#/components/"), "/")
	if !ok {
		return false
	}
	switch kind {
	case "parameters":
		_, ok = doc.Components.Parameters[name]
	case "responses":
		_, ok = doc.Components.Responses[name]
	case "schemas":
		_, ok = doc.Components.Schemas[name]
	default:
		ok = false
	}
	return ok
}

// TestOpenAPIParameters asks the running server which query parameters each
// GET endpoint accepts (an unknown one is a 400 naming it) and checks that
// exactly those are documented.
func TestOpenAPIParameters(t *testing.T) {
	doc := loadOpenAPI(t)
	e := newEnv(t, options{now: testNow})

	// Every filter field, as the domain encodes it, plus every other name
	// the parsers know of, plus names they must refuse.
	all := agenttrail.Filter{
		ActorID: []string{"a"}, ActorType: []string{"agent"}, Source: []string{"s"}, Action: []string{"a"},
		ResourceType: []string{"r"}, ResourceID: []string{"r"}, Result: []string{"success"}, Org: []string{"o"},
		Project: []string{"p"}, StatusCode: []int{200}, ProducerID: []string{"p"},
		TraceID: []string{"4bf92f3577b34da6a3ce929d0e0e4736"}, SessionID: []string{"task"},
		NotSource: []string{"audit"}, NotAction: []string{"heartbeat"},
		Since: testNow.Add(-time.Hour), Until: testNow, Q: "q",
	}
	candidates := map[string]bool{}
	for k := range wire.EncodeFilter(all) {
		candidates[k] = true
	}
	if len(candidates) != reflect.TypeOf(all).NumField() {
		t.Fatalf("Filter has %d fields but Values encodes %d; set every field above", reflect.TypeOf(all).NumField(), len(candidates))
	}
	for _, k := range []string{"limit", "sort", "cursor", "by", "interval", "id", "timeout", "format", "fields", "offset", "after", "from", "to"} {
		candidates[k] = true
	}

	for path, ops := range doc.Paths {
		raw, ok := ops["get"]
		if !ok || !strings.HasPrefix(path, "/v1/") {
			continue
		}
		var op openAPIOp
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		documented := map[string]bool{}
		for _, p := range op.Parameters {
			if p.Ref != "" {
				p = doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			}
			if p.In == "query" {
				documented[p.Name] = true
				if !candidates[p.Name] {
					t.Errorf("GET %s documents parameter %q that no parser knows", path, p.Name)
				}
			}
		}
		concrete := strings.ReplaceAll(path, "{id}", "some-id")
		for name := range candidates {
			// getOpening: an accepted parameter opens an endless stream
			// on /v1/stream, whose status is all this needs.
			r := e.getOpening(t, concrete+"?"+url.Values{name: {"x"}}.Encode())
			var p wire.Problem
			_ = json.Unmarshal(r.body, &p)
			accepted := !(r.status == http.StatusBadRequest && p.Field == name && strings.Contains(p.Detail, "unknown query parameter"))
			if accepted != documented[name] {
				t.Errorf("GET %s: parameter %q accepted %v, documented %v", path, name, accepted, documented[name])
			}
		}
	}
}

// TestOpenAPISchemas checks each documented schema's properties against
// the JSON fields of the type the server encodes.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, v := range map[string]any{
		"Event":              agenttrail.Event{},
		"Rejection":          wire.Rejection{},
		"IngestResponse":     wire.IngestResult{},
		"EventsResponse":     wire.Page{},
		"Bucket":             agenttrail.Bucket{},
		"AggregateResponse":  wire.Aggregate{},
		"TimeBucket":         agenttrail.TimeBucket{},
		"TimeseriesResponse": wire.Timeseries{},
		"Status":             wire.Status{},
		"ClusterStatus":      wire.ClusterStatus{},
		"StreamStatus":       wire.StreamStatus{},
		"ConsumerStatus":     wire.ConsumerStatus{},
		"Problem":            wire.Problem{},
		"Session":            wire.Session{},
		"SessionRequest":     wire.SessionRequest{},
		"Token":              wire.Token{},
		"Tokens":             wire.Tokens{},
		"TokenRequest":       wire.TokenRequest{},
		"SinkStatus":         wire.SinkStatus{},
		"Sinks":              wire.Sinks{},
		"SinkReplay":         wire.SinkReplay{},
		"SinkReplayResult":   wire.SinkReplayResult{},
		"DeadLetter":         wire.DeadLetter{},
		"DeadLetters":        wire.DeadLetters{},
		"Budget":             wire.Budget{},
		"Budgets":            wire.Budgets{},
		"BudgetRequest":      wire.BudgetRequest{},
		"BudgetStatuses":     wire.BudgetStatuses{},
		"ReserveRequest":     wire.ReserveRequest{},
		"ReserveResult":      wire.ReserveResult{},
		"SettleRequest":      wire.SettleRequest{},
		"IntegrityKey":       wire.IntegrityKey{},
		"Checkpoint":         wire.Checkpoint{},
		"Checkpoints":        wire.Checkpoints{},
		"InclusionProof":     wire.InclusionProof{},
		"ConsistencyProof":   wire.ConsistencyProof{},
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is not documented", name)
			continue
		}
		var want, got []string
		rt := reflect.TypeOf(v)
		for _, f := range reflect.VisibleFields(rt) { // an embedded struct's fields are inline
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag != "" && tag != "-" && f.IsExported() {
				want = append(want, tag)
			}
		}
		for p := range schema.Properties {
			got = append(got, p)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v, the type encodes %v", name, got, want)
		}
	}
}
