package server

import (
	"net/http"
	"testing"
	"time"
)

// TestRevokeThroughTheAPIEndsStreams is finding 4 through DELETE
// /v1/tokens/{id}: the stream of the revoked token ends, while the
// request that revokes its own token still gets its answer.
func TestRevokeThroughTheAPIEndsStreams(t *testing.T) {
	se := newSecEnv(t, secOptions{})
	idOf := func(name string) string { return se.tokens[name][len(TokenPrefix) : len(TokenPrefix)+tokenIDLen] }
	st := se.openStream(t, "/v1/stream", se.as("acme-read"))
	if r := se.do(t, http.MethodDelete, "/v1/tokens/"+idOf("acme-read"), se.as("root"), nil); r.status != http.StatusOK {
		t.Fatalf("DELETE /v1/tokens/<acme-read> = %d: %s", r.status, r.body)
	}
	select {
	case <-st.errs:
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked token's stream is open 10s after the revocation")
	}
	if r := se.do(t, http.MethodGet, "/v1/events", se.as("acme-read"), nil); r.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/events with the revoked token = %d, want 401", r.status)
	}
	// An admin revoking the token it uses is answered, and its stream
	// ends.
	own := se.openStream(t, "/v1/stream", se.as("acme-admin"))
	if r := se.do(t, http.MethodDelete, "/v1/tokens/"+idOf("acme-admin"), se.as("acme-admin"), nil); r.status != http.StatusOK {
		t.Fatalf("DELETE /v1/tokens/<own> = %d: %s", r.status, r.body)
	}
	select {
	case <-own.errs:
	case <-time.After(10 * time.Second):
		t.Fatal("the self-revoked token's stream is open 10s after the revocation")
	}
}
