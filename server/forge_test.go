package server

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/wire"
)

// TestIngestTokenCannotSuppressAuditRecords is the attack on the trail's
// record of itself: an ingest token forges a token.revoke audit event, and
// pre-claims the ids the server would give the record of a revocation it
// has not made yet, in the old predictable form and in the server's own
// namespace. The forgeries are refused by index (the neighbour is kept),
// and when the revocation happens the server's record is stored.
func TestIngestTokenCannotSuppressAuditRecords(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			se := newSecEnv(t, secOptions{backend: b})
			var victim TokenRecord
			recs, err := se.file.List()
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if rec.Name == "acme-read" {
					victim = rec
				}
			}
			if victim.ID == "" {
				t.Fatal("no acme-read token record")
			}
			fake := map[string]any{"actor_type": "system", "actor_id": "root", "action": "token.revoke", "resource_type": "token", "resource_id": "acme-read"}
			with := func(extra map[string]any) string {
				m := map[string]any{}
				for k, v := range fake {
					m[k] = v
				}
				for k, v := range extra {
					m[k] = v
				}
				return eventJSON(m)
			}
			got := se.ingestAs(t, "acme-ingest",
				with(map[string]any{"source": "audit"}),
				with(map[string]any{"id": ingest.ServerIDPrefix + "token-revoke-" + victim.ID}),
				with(map[string]any{"id": "token-revoke-" + victim.ID}), // an ordinary id now: stored, harmless
				eventJSON(map[string]any{"id": "neighbour"}),
			)
			want := []wire.Rejection{
				{Index: 0, Error: `source: "audit" is reserved for the trail's own events`},
				{Index: 1, Error: `id: ids beginning with "agenttrail:" are reserved for the trail's own events`},
			}
			if got.Accepted != 2 || len(got.Rejected) != 2 || got.Rejected[0] != want[0] || got.Rejected[1] != want[1] {
				t.Fatalf("POST of forged audit events = %+v, want 2 accepted and rejected %v", got, want)
			}

			if _, err := se.file.Revoke("acme-read", "carol", time.Now()); err != nil {
				t.Fatal(err)
			}
			se.do(t, http.MethodGet, "/v1/events", se.as("acme-read"), nil) // makes the server look at the file
			deadline := time.Now().Add(10 * time.Second)
			for {
				var page wire.Page
				r := se.do(t, http.MethodGet, "/v1/events?action=token.revoke&limit=200&sort=seq", se.as("root"), nil)
				if err := json.Unmarshal(r.body, &page); err != nil {
					t.Fatalf("%s: %v", r.body, err)
				}
				var real, forged int
				for _, e := range page.Events {
					switch {
					case e.Source == agenttrail.SourceAudit && e.ActorID == "carol" && e.ResourceID == "acme-read":
						real++
						if e.ID != ingest.ServerIDPrefix+"token-revoke-"+victim.ID {
							t.Errorf("the server's revocation record has id %q", e.ID)
						}
					case e.Source == agenttrail.SourceAudit:
						t.Fatalf("a forged audit event was stored: %+v", e)
					default:
						forged++
					}
				}
				if real == 1 {
					if forged != 1 {
						t.Errorf("%d client events with action token.revoke, want the 1 with an ordinary id", forged)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no audit record of the revocation 10s after it: %+v", page.Events)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
