package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// fuzzReads are the reads FuzzIngestPath makes after every ingest: none
// may answer 500, whatever was posted.
var fuzzReads = []string{
	"/v1/events?limit=200&sort=seq",
	"/v1/events?limit=50&q=a",
	"/v1/aggregate?by=model",
	"/v1/aggregate?by=actor_id",
	"/v1/aggregate?by=project&since=7d",
	"/v1/timeseries?interval=hour&since=48h&by=source",
	"/v1/timeseries?interval=day&since=30d&by=model",
	"/v1/gaps?since=30d",
	"/v1/export?format=ndjson",
	"/v1/export?format=ocsf",
	"/v1/export?format=csv",
	"/v1/export?format=cef",
}

// fuzzSeeds are the bodies of the attacks of the security review, and a
// few ordinary ones.
func fuzzSeeds() []string {
	ev := func(extra string) string {
		return `{"actor_type":"agent","actor_id":"a","source":"shell","action":"x","result":"success"` + extra + `}`
	}
	return []string{
		ev(""),
		"[" + ev(`,"id":"one"`) + "," + ev(`,"id":"one"`) + "]",
		ev(`,"source":"llm-proxy","metadata":{"llm":{"model":"m","input_tokens":9223372036854775807}}`) + "\n" +
			ev(`,"source":"llm-proxy","metadata":{"llm":{"model":"m","input_tokens":1000000000,"cost_usd":1000000}}`),
		ev(`,"metadata":{"llm":{"model":"m","cost_usd":1e308}}`),
		ev(`,"metadata":{"llm":{"model":"m","output_tokens":-1,"cost_usd":-0.0}}`),
		ev(`,"source":"audit","action":"token.revoke","actor_id":"root"`),
		ev(`,"id":"agenttrail:token-revoke-0000000000000000"`),
		ev(`,"id":"ghp_R4nd0mT0k3nF0rT3st1ngAbCdEfGhIjKlMn","actor_id":"sk-proj-Xk2mPq9rTs4vWy7zAb3cDe6fGh"`),
		ev(`,"metadata":{"pwd":"p","pass":"q","auth":"Bearer abcdefghijklmnopqrstuvwxyz","session":"s","ssh_key":"k","ghp_R4nd0mT0k3nF0rT3st1ngAbCdEfGhIjKlMn":1}`),
		ev(",\"metadata\":{\"k\xff\":\"v\xfe\",\"s\":\"\\ud800\",\"t\":\"\\udc00x\"}"),
		ev(",\"description\":\"d\xff\\u0000\",\"metadata\":{\"n\":\"\\u0000\"}"),
		ev(`,"metadata":{"d":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`),
		"[" + ev("") + "," + `{"metadata":` + strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001) + "}" + "]",
		ev(`,"time":"1970-01-01T00:00:00Z","project":"p","producer_id":"p1","producer_seq":9223372036854775807`),
		ev(`,"id":"max-1","producer_id":"pmax","producer_seq":9223372036854775807`) + "\n" +
			ev(`,"id":"max-2","producer_id":"pmax","producer_seq":9223372036854775807`) + "\n" +
			ev(`,"id":"max-3","producer_id":"pmax","producer_seq":1`),
		ev(`,"status_code":599,"duration_ms":1.7976931348623157e308,"resource_type":"r","resource_id":"` + strings.Repeat("x", 2048) + `"`),
		ev(`,"source":"agent","action":"heartbeat","time":"2020-01-01T00:00:00Z"`),
		"{\"actor_type\":\"agent\"\n" + ev(""),
		`[1, "x", null, {}]`,
	}
}

// FuzzIngestPath fuzzes the whole ingest path, end to end through the
// real handler: decode, validate, redact, both stores, the aggregations
// and the exports. Whatever the body, the ingest answer is never a 500
// and both stores give the same one; afterwards no read answers 500, and
// every NDJSON and OCSF export line and every page is strict UTF-8 JSON.
// The seeds run as part of go test; go test -fuzz=FuzzIngestPath explores.
func FuzzIngestPath(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	envs := []*env{newEnv(f, options{})}
	if os.Getenv("AGENTTRAIL_TEST_POSTGRES") != "" {
		envs = append(envs, newEnv(f, options{store: func(t testing.TB) agenttrail.Store {
			st, _ := openPostgres(t)
			return st
		}}))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var first []byte
		for k, e := range envs {
			r := e.post(t, "application/json", body)
			if r.status >= 500 {
				t.Fatalf("store %d: POST /v1/events = %d: %s", k, r.status, r.body)
			}
			if r.status == http.StatusOK {
				var res wire.IngestResult
				if err := json.Unmarshal(r.body, &res); err != nil {
					t.Fatalf("store %d: POST answer %s: %v", k, r.body, err)
				}
			}
			answer := fmt.Appendf(nil, "%d %s", r.status, r.body)
			if k == 0 {
				first = answer
			} else if !bytes.Equal(first, answer) {
				t.Errorf("the stores answer the same body differently:\n%s\n%s", first, answer)
			}
			for _, path := range fuzzReads {
				r := e.get(t, path)
				if r.status != http.StatusOK {
					t.Fatalf("store %d: GET %s after the body = %d: %s", k, path, r.status, r.body)
				}
				if !utf8.Valid(r.body) {
					t.Errorf("store %d: GET %s is not valid UTF-8", k, path)
				}
				if strings.Contains(path, "format=ndjson") || strings.Contains(path, "format=ocsf") || !strings.Contains(path, "export") {
					strictJSONLines(t, fmt.Sprintf("store %d: GET %s", k, path), r.body)
				}
			}
		}
	})
}
