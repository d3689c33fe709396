package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseExample(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "hec.token")
	if err := os.WriteFile(tok, []byte("00000000-0000-0000-0000-000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(strings.NewReader(`
addr: 127.0.0.1:7400
rate_limit: 50
sinks:
  - name: splunk
    type: webhook
    url: https://splunk.example:8088
    secret_file: ` + tok + `
    format: ocsf
    filter: {source: [k8s-proxy, aws-proxy], result: [failure, error]}
    batch: {max_events: 500, max_bytes: 1MiB, max_wait: 1s}
    required: true
  - {name: archive, type: file, path: /var/log/agenttrail/trail.ndjson, rotate: {max_bytes: 100MiB, max_age: 24h, gzip: true}}
retention:
  default: 400d
  rules:
    - {source: [llm-proxy], keep: 90d}
    - {org: [acme], keep: 7y}
`))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if len(f.Sinks) != 2 || f.Sinks[0].Batch.MaxBytes != 1<<20 || !f.Sinks[0].Required || f.Sinks[1].Rotate.MaxBytes != 100<<20 || !f.Sinks[1].Rotate.Gzip {
		t.Errorf("sinks = %+v", f.Sinks)
	}
	if f.Sinks[1].Format != "native" || f.Sinks[1].Batch.MaxEvents != 500 {
		t.Errorf("defaults not filled in: %+v", f.Sinks[1])
	}
	got := map[string]string{}
	for _, s := range f.Settings() {
		got[s.Flag] = s.Value
	}
	if got["addr"] != "127.0.0.1:7400" || got["rate-limit"] != "50" || got["retain"] != "400d" || len(got) != 3 {
		t.Errorf("Settings = %v", got)
	}
	if keep, _ := ParseKeep(f.Retention.Rules[1].Keep); keep != 7*365*24*time.Hour {
		t.Errorf("keep 7y = %v", keep)
	}
}

// TestParseErrors: each mistake is named, with its line where it has one.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "addr: x\nrate_limt: 5\n", "line 2: field rate_limt not found"},
		{"unknown sink key", "sinks:\n  - name: a\n    type: file\n    pth: /tmp/x\n", "line 4: field pth not found"},
		{"unknown batch key", "sinks:\n  - {name: a, type: file, path: /x, batch: {max_event: 5}}\n", "field max_event not found"},
		{"unknown retention key", "retention:\n  default: 1d\n  rule: []\n", "line 3: field rule not found"},
		{"list for a flag", "addr: [a, b]\n", "line 1: want a single value"},
		{"bad size", "sinks:\n  - {name: a, type: file, path: /x, batch: {max_bytes: 1TB}}\n", "bad size"},
		{"bad type", "sinks:\n  - {name: a, type: kafka}\n", `sink "a": type: want one of`},
		{"no path", "sinks:\n  - {name: a, type: file}\n", `sink "a": path: required`},
		{"duplicate name", "sinks:\n  - {name: a, type: file, path: /x}\n  - {name: a, type: file, path: /y}\n", `sink "a": name: given twice`},
		{"bad name", "sinks:\n  - {name: 'A B', type: file, path: /x}\n", `name: want lowercase`},
		{"bad filter", "sinks:\n  - {name: a, type: file, path: /x, filter: {sorce: [x]}}\n", `sink "a": filter: sorce`},
		{"filter by time", "sinks:\n  - {name: a, type: file, path: /x, filter: {since: [1h]}}\n", `filter: since`},
		{"bad format", "sinks:\n  - {name: a, type: file, path: /x, format: xml}\n", `format: want native`},
		{"missing secret file", "sinks:\n  - {name: h, type: webhook, url: 'http://127.0.0.1:1/', secret_file: /nonexistent/s}\n", `sink "h": secret_file`},
		{"inline secret", "sinks:\n  - {name: h, type: webhook, url: 'http://127.0.0.1:1/', secret: abc}\n", `field secret not found`},
		{"bad url", "sinks:\n  - {name: h, type: webhook, url: 'ftp://x'}\n", `sink "h": url`},
		{"bad keep", "retention:\n  rules:\n    - {source: [x], keep: forever}\n", `retention.rules[0].keep: bad period`},
		{"bad default", "retention:\n  default: 0d\n", `line 2: retention.default`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tc.yaml, err, tc.want)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	f, err := Parse(strings.NewReader(""))
	if err != nil || len(f.Settings()) != 0 {
		t.Errorf("Parse(\"\") = %+v, %v; want nothing set", f, err)
	}
}
