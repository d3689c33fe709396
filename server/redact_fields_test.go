package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEverySecretIsRedactedOrRefused is the attack of a client that puts
// secrets wherever the redactor once did not look: in identifiers, scope
// names, resource_type, metadata keys, and under metadata keys named pwd,
// pass, auth, session and ssh_key. Descriptive strings are redacted; the
// identifiers that key an event (id, producer_id, org, project) are
// refused by index, naming the field and the kind of secret but not the
// secret. Nothing of any secret reaches any table of the database.
func TestEverySecretIsRedactedOrRefused(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			se := newSecEnv(t, secOptions{backend: b})
			secret := func(i int) string { return fmt.Sprintf("ghp_%02dR4nd0mT0k3nF0rT3st1ngAbCdEfGhIjKl", i) }
			plain := map[string]string{ // values that are secrets only by their key
				"pwd": "plain-value-pwd-1", "pass": "plain-value-pass-2", "db_pass": "plain-value-pass-3", "auth": "plain-value-auth-4",
				"session": "plain-value-session-5", "ssh_key": "plain-value-sshkey-6", "sshKey": "plain-value-sshkey-7", "DB_PASS": "plain-value-pass-8",
			}
			meta := map[string]any{secret(1): "value-under-a-secret-key", "nested": map[string]any{"x": []any{map[string]any{secret(2) + "-k": 1}}}}
			for k, v := range plain {
				meta[k] = v
			}
			// Ordinary words that end like a secret word stay readable.
			meta["bypass"], meta["oauth_flow"], meta["session_id"] = "kept-bypass", "kept-oauth", "kept-session-id"
			events := []string{
				eventJSON(map[string]any{"id": "redacted", "actor_id": "agent-" + secret(3), "actor_name": secret(4), "session_id": "task " + secret(12),
					"resource_type": secret(5), "resource_id": secret(6), "action": "run " + secret(7), "description": secret(8), "metadata": meta}),
				eventJSON(map[string]any{"id": "key-" + secret(9)}),
				eventJSON(map[string]any{"producer_id": secret(10), "producer_seq": 1}),
				eventJSON(map[string]any{"project": secret(11)}),
				eventJSON(map[string]any{"id": "neighbour"}),
			}
			r := se.do(t, http.MethodPost, "/v1/events", se.as("acme-ingest"), []byte(strings.Join(events, "\n")))
			got := decodeIngest(t, "POST of secrets everywhere", r)
			if got.Accepted != 2 || len(got.Rejected) != 3 {
				t.Fatalf("POST = %+v, want 2 accepted and 3 rejected", got)
			}
			for i, field := range []string{"id", "producer_id", "project"} {
				if rj := got.Rejected[i]; rj.Index != i+1 || !strings.HasPrefix(rj.Error, field+": holds what looks like a secret (github_token)") {
					t.Errorf("rejection %d = %+v, want index %d naming %s and the kind of secret", i, rj, i+1, field)
				}
			}
			if strings.Contains(string(r.body), "R4nd0m") {
				t.Errorf("the answer repeats a secret: %s", r.body)
			}

			stored := strings.Join(se.dump(t), "\n")
			for i := 1; i <= 12; i++ {
				if strings.Contains(stored, secret(i)) || strings.Contains(stored, "R4nd0mT0k3n") {
					t.Errorf("secret %d reached the database", i)
				}
			}
			for k, v := range plain {
				if strings.Contains(stored, v) {
					t.Errorf("the value under metadata key %q reached the database", k)
				}
			}
			for _, kept := range []string{"kept-bypass", "kept-oauth", "kept-session-id", "value-under-a-secret-key"} {
				if !strings.Contains(stored, kept) {
					t.Errorf("%q was redacted too; only secrets should be", kept)
				}
			}
			var ev struct {
				ActorID      string          `json:"actor_id"`
				ResourceType string          `json:"resource_type"`
				SessionID    string          `json:"session_id"`
				Metadata     json.RawMessage `json:"metadata"`
			}
			rr := se.do(t, http.MethodGet, "/v1/events/redacted", se.as("acme-read"), nil)
			if err := json.Unmarshal(rr.body, &ev); err != nil {
				t.Fatalf("GET /v1/events/redacted: %s: %v", rr.body, err)
			}
			if ev.ActorID != "agent-[REDACTED:github_token]" || ev.ResourceType != "[REDACTED:github_token]" ||
				ev.SessionID != "task [REDACTED:github_token]" ||
				!strings.Contains(string(ev.Metadata), `"[REDACTED:github_token]":"value-under-a-secret-key"`) {
				t.Errorf("stored actor_id %q, resource_type %q, session_id %q, metadata %s; want the secrets replaced by markers", ev.ActorID, ev.ResourceType, ev.SessionID, ev.Metadata)
			}
		})
	}
}
