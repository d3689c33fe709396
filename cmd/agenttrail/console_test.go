package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/wire"
)

// TestConsoleCommand makes a sign-in link for a running server's data
// directory and exchanges it as the console does: once.
func TestConsoleCommand(t *testing.T) {
	srv := servertest.Start(t)
	code, out, errOut := runCmd(t, "console", "--data", srv.DataDir, "--server", srv.URL+"/", "--role", "admin", "--org", "acme")
	if code != 0 {
		t.Fatalf("console = %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(srv.URL) + `/#login=([0-9a-f]{32})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("console printed %q, want %s/#login=CODE", out, srv.URL)
	}
	exchange := func() (int, wire.Session) {
		body, _ := json.Marshal(wire.SessionRequest{Code: m[1]})
		resp, err := http.Post(srv.URL+"/v1/session", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s wire.Session
		json.NewDecoder(resp.Body).Decode(&s)
		return resp.StatusCode, s
	}
	if status, s := exchange(); status != http.StatusOK || s.Role != "admin" || s.Org != "acme" || s.ExpiresAt.IsZero() {
		t.Errorf("exchanging the code = %d %+v, want an admin session of acme that expires", status, s)
	}
	if status, _ := exchange(); status != http.StatusUnauthorized {
		t.Errorf("exchanging the code again = %d, want 401", status)
	}
	for _, args := range [][]string{{"--role", "ingest"}, {"--org", "a b"}} {
		if code, _, errOut := runCmd(t, append([]string{"console", "--data", srv.DataDir}, args...)...); code == 0 || !strings.Contains(errOut, strings.TrimPrefix(args[0], "--")) {
			t.Errorf("console %v = %d %q, want an error naming %s", args, code, errOut, args[0])
		}
	}
}
