package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestProfilesOnlyForTheOperator: the runtime's profiles describe a process
// that serves every org, so only an admin token of every org gets them;
// an org's admin, a reader of every org and an anonymous caller do not, and
// the command line (which may hold a DSN's password) is never served.
func TestProfilesOnlyForTheOperator(t *testing.T) {
	tk := tokens{
		"root":      {Name: "root", Role: RoleAdmin, Org: AllOrgs},
		"acme-root": {Name: "acme-root", Role: RoleAdmin, Org: "acme"},
		"all-read":  {Name: "all-read", Role: RoleRead, Org: AllOrgs},
	}
	e := newEnv(t, options{now: testNow, auth: tk})
	for _, tc := range []struct {
		token, path string
		status      int
	}{
		{"root", "/debug/pprof/heap?debug=1", http.StatusOK},
		{"root", "/debug/pprof/goroutine?debug=1", http.StatusOK},
		{"root", "/debug/pprof/profile?seconds=1", http.StatusOK},
		{"root", "/debug/pprof/cmdline", http.StatusNotFound},
		{"root", "/debug/pprof/no-such-profile", http.StatusNotFound},
		{"acme-root", "/debug/pprof/heap", http.StatusForbidden},
		{"all-read", "/debug/pprof/heap", http.StatusForbidden},
		{"", "/debug/pprof/heap", http.StatusUnauthorized},
	} {
		var h http.Header
		if tc.token != "" {
			h = http.Header{"Authorization": {"Bearer " + tc.token}}
		}
		r := e.do(t, http.MethodGet, tc.path, h, nil)
		if r.status != tc.status {
			t.Errorf("GET %s as %q = %d, want %d: %.200s", tc.path, tc.token, r.status, tc.status, r.body)
		}
		if tc.status == http.StatusOK && strings.HasSuffix(tc.path, "debug=1") && !strings.Contains(string(r.body), "goroutine") && !strings.Contains(string(r.body), "heap") {
			t.Errorf("GET %s answered no profile: %.200s", tc.path, r.body)
		}
	}
}
