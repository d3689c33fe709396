package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestUnauthenticatedRequestsAreRateLimited is a low finding of the second
// security review: requests without a valid token were never limited. An
// attacker guesses tokens from one address and is slowed down with 429 and
// a Retry-After; the open routes share that budget; a valid token from the
// same address is not affected.
func TestUnauthenticatedRequestsAreRateLimited(t *testing.T) {
	se := newSecEnv(t, secOptions{anon: RateLimit{Rate: 0.5, Burst: 5}})
	guess := http.Header{"Authorization": {"Bearer " + TokenPrefix + strings.Repeat("0", tokenIDLen) + "_" + strings.Repeat("1", tokenSecLen)}}
	counts := map[int]int{}
	var limited response
	for range 20 {
		r := se.do(t, http.MethodGet, "/v1/events", guess, nil)
		counts[r.status]++
		if r.status == http.StatusTooManyRequests {
			limited = r
		}
	}
	if counts[http.StatusUnauthorized] == 0 || counts[http.StatusTooManyRequests] == 0 || counts[http.StatusUnauthorized] > 6 {
		t.Fatalf("20 guesses from one address: %v; want a few 401 and then 429", counts)
	}
	p := problemFrom(t, "a guess over the limit", limited, http.StatusTooManyRequests)
	if limited.header.Get("Retry-After") == "" || !strings.Contains(p.Detail, "127.0.0.1") {
		t.Errorf("429: Retry-After %q, detail %q; want a Retry-After and the address", limited.header.Get("Retry-After"), p.Detail)
	}
	if r := se.do(t, http.MethodGet, "/livez", nil, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("GET /livez from the same address = %d, want 429", r.status)
	}
	for range 20 {
		if r := se.do(t, http.MethodGet, "/v1/events", se.as("acme-read"), nil); r.status != http.StatusOK {
			t.Fatalf("GET /v1/events with a valid token from the limited address = %d, want 200: %s", r.status, r.body)
		}
	}
}
