package app

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/server"
)

// TestMetricsNeedAToken is a low finding of the second security review:
// /metrics was open to anyone. With --metrics-auth on (the default off
// loopback, see TestMetricsAuthDefault) a scraper needs a read or admin
// token of every org; a token of one org may not read every org's
// counters; a loopback server with the default stays open.
func TestMetricsNeedAToken(t *testing.T) {
	get := func(url, token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	dir := t.TempDir()
	m := runMain(t, Config{Addr: "127.0.0.1:0", MetricsAuth: "on", DataDir: dir})
	admin, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	acme, _, err := server.NewTokenFile(filepath.Join(dir, TokensFile)).Create("acme-read", server.RoleRead, "acme", "tester", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who, token string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a read token of one org", acme, http.StatusForbidden},
		{"the admin token", strings.TrimSpace(string(admin)), http.StatusOK},
	} {
		if got := get(m.URL(), c.token); got != c.want {
			t.Errorf("GET /metrics with --metrics-auth on and %s = %d, want %d", c.who, got, c.want)
		}
	}
	local := runMain(t, Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if got := get(local.URL(), ""); got != http.StatusOK {
		t.Errorf("GET /metrics on loopback without a token = %d, want 200", got)
	}
}

func TestMetricsAuthDefault(t *testing.T) {
	for _, c := range []struct {
		mode, addr string
		want       bool
	}{
		{"", "127.0.0.1:7311", false}, {"auto", "localhost:7311", false}, {"auto", "[::1]:7311", false},
		{"", "0.0.0.0:7311", true}, {"auto", ":7311", true}, {"auto", "[::]:7311", true}, {"auto", "10.0.0.5:7311", true},
		{"on", "127.0.0.1:7311", true}, {"off", "0.0.0.0:7311", false},
	} {
		if got, err := metricsAuthOf(c.mode, c.addr); err != nil || got != c.want {
			t.Errorf("metricsAuthOf(%q, %q) = %v, %v; want %v", c.mode, c.addr, got, err, c.want)
		}
	}
	if _, err := metricsAuthOf("yes", "127.0.0.1:7311"); err == nil {
		t.Errorf("metricsAuthOf(yes) = nil error, want one naming --metrics-auth")
	}
}

// runMain opens a server of cfg and runs it until the test ends.
func runMain(t *testing.T, cfg Config) *Main {
	t.Helper()
	m, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, m)
	return m
}

// runStarted runs m, which Open opened, until the test ends.
func runStarted(t *testing.T, m *Main) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}
