package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"unicode/utf8"
)

// loneSurrogate matches a \uD800-\uDBFF escape not followed by a low one,
// or a \uDC00-\uDFFF escape not preceded by a high one: JSON that strict
// parsers refuse.
var loneSurrogate = regexp.MustCompile(`(?i)\\ud[89ab][0-9a-f]{2}(?:[^\\]|\\[^u]|\\u[^d]|\\ud[^c-f]|$)|(?:^|[^0-9a-f]{5}[^\\]|[^0-9a-f]{4}[^u]|[^8-9a-b][0-9a-f]{2}.)\\ud[c-f][0-9a-f]{2}`)

// strictJSONLines fails t unless every line of body is valid UTF-8 and
// valid JSON without a lone surrogate.
func strictJSONLines(t *testing.T, what string, body []byte) int {
	t.Helper()
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		n++
		if !utf8.Valid(line) || !json.Valid(line) || loneSurrogate.Match(line) {
			t.Errorf("%s: line %d is not strict UTF-8 JSON: %q", what, n, line)
		}
	}
	return n
}

// TestExportsAreValidUTF8JSON is the attack of an ingest token that puts
// invalid UTF-8 and lone UTF-16 surrogates in metadata keys and values:
// the events are stored with that text repaired to U+FFFD, and every
// export line, every page and every stream is strict UTF-8 JSON.
func TestExportsAreValidUTF8JSON(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			se := newSecEnv(t, secOptions{backend: b})
			bad := []string{
				"{\"actor_type\":\"agent\",\"actor_id\":\"a\",\"source\":\"shell\",\"action\":\"x\",\"result\":\"success\",\"metadata\":{\"k\xff\xfe\":\"v\xc3\x28\",\"shell\":{\"stdout\":\"\xed\xa0\x80 out\"}}}",
				`{"actor_type":"agent","actor_id":"a","source":"shell","action":"x","result":"success","metadata":{"lone":"\ud800","low":"x\udc00y","pair":"\ud83d\ude00"}}`,
				"{\"actor_type\":\"agent\",\"actor_id\":\"a\",\"source\":\"shell\",\"action\":\"x\",\"result\":\"success\",\"description\":\"d\xff\",\"metadata\":{\"\xff\":{\"\xfe\":[\"\xfd\"]}}}",
			}
			got := decodeIngest(t, "POST invalid UTF-8", se.do(t, http.MethodPost, "/v1/events", se.as("acme-ingest"), bytes.Join([][]byte{[]byte(bad[0]), []byte(bad[1]), []byte(bad[2])}, []byte("\n"))))
			if got.Accepted != len(bad) {
				t.Fatalf("POST = %+v, want all %d stored, repaired", got, len(bad))
			}
			for _, format := range []string{"ndjson", "ocsf"} {
				r := se.do(t, http.MethodGet, "/v1/export?format="+format, se.as("acme-read"), nil)
				if r.status != http.StatusOK {
					t.Fatalf("GET /v1/export?format=%s = %d: %s", format, r.status, r.body)
				}
				if n := strictJSONLines(t, "export "+format, r.body); n < len(bad) {
					t.Errorf("export %s has %d lines, want at least %d", format, n, len(bad))
				}
			}
			for _, format := range []string{"csv", "cef"} {
				r := se.do(t, http.MethodGet, "/v1/export?format="+format, se.as("acme-read"), nil)
				if r.status != http.StatusOK || !utf8.Valid(r.body) {
					t.Errorf("GET /v1/export?format=%s = %d, valid UTF-8 %v", format, r.status, utf8.Valid(r.body))
				}
			}
			r := se.do(t, http.MethodGet, "/v1/events?limit=200", se.as("acme-read"), nil)
			strictJSONLines(t, "GET /v1/events", r.body)
		})
	}
}
