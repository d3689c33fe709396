package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail/config"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeFlagsHaveKeys: every flag of serve (but --config) can be set in
// the configuration file.
func TestServeFlagsHaveKeys(t *testing.T) {
	code, _, usage := runCmd(t, "serve", "-h")
	if code != 0 {
		t.Fatalf("serve -h = %d", code)
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(usage, -1)
	if len(flags) < 10 {
		t.Fatalf("serve -h listed %d flags: %s", len(flags), usage)
	}
	keys := config.Keys()
	for _, f := range flags {
		if f[1] != "config" && !slices.Contains(keys, f[1]) {
			t.Errorf("serve flag --%s has no key in the configuration file", f[1])
		}
	}
}

// TestServeConfigFlagWins: the file sets what the command line does not.
func TestServeConfigFlagWins(t *testing.T) {
	data := t.TempDir()
	cfgFile := writeFile(t, "agenttrail.yaml", "addr: 127.0.0.1:7400\ndata: "+data+"\nrate_limit: 50\nrate_burst: 60\nmetrics_auth: on\nretention:\n  default: 2y\n  rules:\n    - {source: [llm-proxy], keep: 90d}\n")
	env := &Env{Stderr: os.Stderr, Getenv: os.Getenv}
	cfg, err := serveFlags([]string{"--config", cfgFile, "--rate-limit", "7"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:7400" || cfg.DataDir != data || cfg.RateLimit.Rate != 7 || cfg.RateLimit.Burst != 60 || cfg.MetricsAuth != "on" {
		t.Errorf("serveFlags = %+v; want the file's addr, data, burst and metrics_auth and the command line's rate", cfg)
	}
	if cfg.Retain.Hours() != 2*365*24 || len(cfg.RetentionRules) != 1 || cfg.RetentionRules[0].Keep.Hours() != 90*24 {
		t.Errorf("retention = %v %+v", cfg.Retain, cfg.RetentionRules)
	}
}

func TestConfigCheck(t *testing.T) {
	secret := writeFile(t, "hook.secret", "s3cr3t\n")
	good := writeFile(t, "good.yaml", "data: "+t.TempDir()+"\nsinks:\n  - {name: hook, type: webhook, url: 'https://hooks.example/at', secret_file: "+secret+"}\n  - {name: archive, type: file, path: /var/log/at.ndjson, required: true}\n")
	code, out, errOut := runCmd(t, "config", "check", good)
	if code != 0 || !strings.Contains(out, "ok") || !strings.Contains(out, "sink hook: webhook") || !strings.Contains(out, "archive: file, format native, required") {
		t.Errorf("config check good = %d\n%s%s", code, out, errOut)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"addr: 127.0.0.1:1\nrate_limt: 5\n", "line 2: field rate_limt not found"},
		{"rate_limit: fast\n", "line 1: rate_limit: "},
		{"metrics_auth: maybe\n", "--metrics-auth"},
		{"tls_cert: /nonexistent.pem\ntls_key: /nonexistent.key\n", "TLS certificate"},
		{"sinks:\n  - {name: h, type: webhook, url: 'https://x', secret_env: AGENTTRAIL_TEST_UNSET_VAR}\n", "AGENTTRAIL_TEST_UNSET_VAR is empty or unset"},
		{"retention:\n  rules:\n    - {keep: 1d}\n", "retention.rules[0]: give source, org or project"},
	} {
		bad := writeFile(t, "bad.yaml", tc.yaml)
		code, out, errOut := runCmd(t, "config", "check", bad)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("config check %q = %d\n%s%s; want exit 1 saying %q", tc.yaml, code, out, errOut, tc.want)
		}
	}
	if code, _, _ := runCmd(t, "config", "check"); code != 2 {
		t.Errorf("config check without a file = %d, want 2", code)
	}
	if code, _, errOut := runCmd(t, "config", "check", "/nonexistent.yaml"); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("config check of a missing file = %d %s", code, errOut)
	}
}
