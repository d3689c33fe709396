package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/wire"
)

func decodeAs[T any](t *testing.T, what string, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%s: decoding %s: %v", what, r.body, err)
	}
	return v
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func problemOf(t *testing.T, r response) wire.Problem {
	t.Helper()
	return decodeAs[wire.Problem](t, "problem", r)
}

func TestSessionSignInLinkWorksOnce(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	seedOrgs(t, se)
	code, err := se.file.CreateLogin(RoleRead, "acme", "tester", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"code":"` + code + `"}`)
	r := se.do(t, http.MethodPost, "/v1/session", nil, body)
	if r.status != http.StatusOK {
		t.Fatalf("POST /v1/session = %d %s, want 200", r.status, r.body)
	}
	s := decodeAs[wire.Session](t, "session", r)
	if s.Role != "read" || s.Org != "acme" || !strings.HasPrefix(s.Token, TokenPrefix) {
		t.Errorf("session = %+v, want a read token of acme", s)
	}
	if d := time.Until(s.ExpiresAt); d < SessionTTL-time.Minute || d > SessionTTL+time.Minute {
		t.Errorf("session expires in %v, want %v", d, SessionTTL)
	}

	// The session token reads acme's events and nothing else.
	who := se.do(t, http.MethodGet, "/v1/session", bearer(s.Token), nil)
	if got := decodeAs[wire.Session](t, "who", who); who.status != 200 || got.Name != s.Name || got.Token != "" || got.Org != "acme" {
		t.Errorf("GET /v1/session = %d %+v, want the session without its token", who.status, got)
	}
	page := se.do(t, http.MethodGet, "/v1/events?limit=200&org=globex", bearer(s.Token), nil)
	if page.status != 200 || len(eventsPage(t, page.body)) > 0 {
		t.Errorf("GET /v1/events?org=globex with an acme session = %d, shows globex: %s", page.status, page.body)
	}
	if tl := se.do(t, http.MethodGet, "/v1/tokens", bearer(s.Token), nil); tl.status != http.StatusForbidden {
		t.Errorf("GET /v1/tokens with a read session = %d, want 403", tl.status)
	}

	// A second use, an unknown code and a malformed one get the same clear
	// refusal.
	for name, b := range map[string][]byte{
		"used":    body,
		"unknown": []byte(`{"code":"` + strings.Repeat("ab", 16) + `"}`),
		"short":   []byte(`{"code":"x"}`),
	} {
		r := se.do(t, http.MethodPost, "/v1/session", nil, b)
		if p := problemOf(t, r); r.status != http.StatusUnauthorized || !strings.Contains(p.Detail, "unknown, expired or already used") {
			t.Errorf("%s code: POST /v1/session = %d %q, want 401 naming the link unusable", name, r.status, p.Detail)
		}
	}
	for b, field := range map[string]string{`{"code":"x","role":"admin"}`: "role", `{"code":1}`: "code", `{}`: "code", `nope`: "body"} {
		r := se.do(t, http.MethodPost, "/v1/session", nil, []byte(b))
		if p := problemOf(t, r); r.status != http.StatusBadRequest || p.Field != field {
			t.Errorf("POST /v1/session %s = %d field %q, want 400 naming %q", b, r.status, p.Field, field)
		}
	}
}

func TestSessionLinkExpires(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	code, err := se.file.CreateLogin(RoleAdmin, AllOrgs, "tester", time.Now().Add(-LoginTTL-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r := se.do(t, http.MethodPost, "/v1/session", nil, []byte(`{"code":"`+code+`"}`))
	if r.status != http.StatusUnauthorized {
		t.Errorf("POST /v1/session with a code older than %v = %d, want 401", LoginTTL, r.status)
	}
	if _, err := se.file.CreateLogin(RoleIngest, AllOrgs, "tester", time.Now()); err == nil {
		t.Errorf("CreateLogin(ingest) = nil error, want a refusal: the console reads")
	}
}

func TestSessionTokenExpires(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	past := time.Now().Add(-SessionTTL - time.Minute)
	code, err := se.file.CreateLogin(RoleRead, AllOrgs, "tester", past)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := se.file.Exchange(code, past)
	if err != nil {
		t.Fatal(err)
	}
	r := se.do(t, http.MethodGet, "/v1/events", bearer(token), nil)
	if p := problemOf(t, r); r.status != http.StatusUnauthorized || !strings.Contains(p.Detail, "expired") {
		t.Errorf("GET /v1/events with an expired session = %d %q, want 401 saying it expired", r.status, p.Detail)
	}
}

// waitStatus polls GET path with token until it answers want: a token
// change reaches a running server within a second.
func waitStatus(t *testing.T, se *secEnv, token, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := se.do(t, http.MethodGet, path, bearer(token), nil)
		if r.status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d, want %d within 5s", path, r.status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSessionSignOutRevokes(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	code, _ := se.file.CreateLogin(RoleRead, "acme", "tester", time.Now())
	token, _, err := se.file.Exchange(code, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, se, token, "/v1/session", http.StatusOK)
	if r := se.do(t, http.MethodDelete, "/v1/session", bearer(token), nil); r.status != http.StatusOK {
		t.Fatalf("DELETE /v1/session = %d %s", r.status, r.body)
	}
	waitStatus(t, se, token, "/v1/events", http.StatusUnauthorized)

	// Signing out with a token that is not a session revokes nothing.
	if r := se.do(t, http.MethodDelete, "/v1/session", se.as("acme-read"), nil); r.status != http.StatusOK {
		t.Fatalf("DELETE /v1/session as acme-read = %d %s", r.status, r.body)
	}
	time.Sleep(tokenRecheck + 100*time.Millisecond)
	if r := se.do(t, http.MethodGet, "/v1/events", se.as("acme-read"), nil); r.status != http.StatusOK {
		t.Errorf("acme-read after signing out with it = %d, want 200: it is not a session", r.status)
	}
}

func TestTokensAPIScoped(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	list := func(as string) []wire.Token {
		t.Helper()
		r := se.do(t, http.MethodGet, "/v1/tokens", se.as(as), nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/tokens as %s = %d %s", as, r.status, r.body)
		}
		return decodeAs[wire.Tokens](t, "tokens", r).Tokens
	}
	idOf := map[string]string{}
	for _, tk := range list("root") {
		idOf[tk.Name] = tk.ID
	}
	if len(idOf) != len(secTokens) {
		t.Errorf("root lists %d tokens, want %d", len(idOf), len(secTokens))
	}
	for _, tk := range list("acme-admin") {
		if tk.Org != "acme" {
			t.Errorf("acme-admin lists token %s of org %s", tk.Name, tk.Org)
		}
	}
	for _, as := range []string{"acme-read", "acme-ingest"} {
		if r := se.do(t, http.MethodGet, "/v1/tokens", se.as(as), nil); r.status != http.StatusForbidden {
			t.Errorf("GET /v1/tokens as %s = %d, want 403", as, r.status)
		}
	}

	// An admin of acme creates acme tokens only.
	r := se.do(t, http.MethodPost, "/v1/tokens", se.as("acme-admin"), []byte(`{"name":"gx","role":"read","org":"globex"}`))
	if r.status != http.StatusForbidden {
		t.Errorf("acme-admin creating a globex token = %d, want 403", r.status)
	}
	r = se.do(t, http.MethodPost, "/v1/tokens", se.as("acme-admin"), []byte(`{"name":"ci","role":"read"}`))
	nt := decodeAs[wire.NewToken](t, "new token", r)
	if r.status != http.StatusOK || nt.Org != "acme" || nt.Role != "read" || nt.CreatedBy != "acme-admin" {
		t.Fatalf("POST /v1/tokens as acme-admin = %d %+v, want a read token of acme", r.status, nt)
	}
	waitStatus(t, se, nt.Secret, "/v1/events", http.StatusOK)
	for b, field := range map[string]string{`{"role":"read","colour":1}`: "colour", `{"role":"boss"}`: "role", `{"role":"read","org":"a b"}`: "org"} {
		r := se.do(t, http.MethodPost, "/v1/tokens", se.as("root"), []byte(b))
		if p := problemOf(t, r); r.status != http.StatusBadRequest || p.Field != field {
			t.Errorf("POST /v1/tokens %s = %d field %q, want 400 naming %q", b, r.status, p.Field, field)
		}
	}

	// Revoking another org's token is as if it did not exist.
	if r := se.do(t, http.MethodDelete, "/v1/tokens/"+idOf["globex-read"], se.as("acme-admin"), nil); r.status != http.StatusNotFound {
		t.Errorf("acme-admin revoking globex-read = %d, want 404", r.status)
	}
	if r := se.do(t, http.MethodDelete, "/v1/tokens/"+nt.ID, se.as("acme-admin"), nil); r.status != http.StatusOK {
		t.Errorf("acme-admin revoking its own token = %d %s", r.status, r.body)
	}
	waitStatus(t, se, nt.Secret, "/v1/events", http.StatusUnauthorized)
	if r := se.do(t, http.MethodGet, "/v1/events", se.as("globex-read"), nil); r.status != http.StatusOK {
		t.Errorf("globex-read after acme-admin's attempt = %d, want 200", r.status)
	}
	if r := se.do(t, http.MethodDelete, "/v1/tokens/"+nt.ID, se.as("root"), nil); r.status != http.StatusNotFound {
		t.Errorf("revoking a revoked token = %d, want 404", r.status)
	}
}
