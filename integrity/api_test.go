package integrity_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/servertest"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/agenttrail/agenttrail/wire"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// getJSON GETs path from srv with token and decodes the answer into out,
// returning the status.
func getJSON(t *testing.T, srv *servertest.Server, token, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

func ingest(t *testing.T, srv *servertest.Server, events []agenttrail.Event) {
	t.Helper()
	c := client.New(srv.URL, client.WithToken(srv.Token))
	for i := 0; i < len(events); i += 500 {
		res, err := c.Ingest(t.Context(), events[i:min(i+500, len(events))])
		if err != nil || len(res.Rejected) > 0 {
			t.Fatalf("Ingest: %+v, %v", res, err)
		}
	}
}

// TestOutsideVerifier checks an event's inclusion the way someone outside
// the project would: plain HTTP and JSON, the checkpoint opened with
// note.Open and the server's published key, the C2SP body read by hand, and
// the proof checked with tlog.CheckRecord. Only the leaf's encoding, which
// docs/architecture.md specifies, comes from this repository.
func TestOutsideVerifier(t *testing.T) {
	srv := servertest.Start(t)
	events := storetest.Events(1, 700, time.Now().Add(-time.Hour), time.Hour)
	for i := range events {
		events[i].Org = "acme"
	}
	ingest(t, srv, events)

	var key struct{ Key string }
	if st := getJSON(t, srv, srv.Token, "/v1/integrity/key", &key); st != 200 {
		t.Fatalf("GET /v1/integrity/key = %d", st)
	}
	verifier, err := note.NewVerifier(key.Key)
	if err != nil {
		t.Fatalf("note.NewVerifier(%q): %v", key.Key, err)
	}
	for _, i := range []int{0, 1, 350, 699} {
		id := events[i].ID
		var ev map[string]any
		if st := getJSON(t, srv, srv.Token, "/v1/events/"+url.PathEscape(id)+"?org=acme", &ev); st != 200 {
			t.Fatalf("GET event = %d", st)
		}
		var p struct {
			LogIndex   int64    `json:"log_index"`
			LeafHash   []byte   `json:"leaf_hash"`
			TreeSize   int64    `json:"tree_size"`
			Proof      [][]byte `json:"proof"`
			Checkpoint struct {
				Note string `json:"note"`
			} `json:"checkpoint"`
		}
		if st := getJSON(t, srv, srv.Token, "/v1/integrity/proof/"+url.PathEscape(id)+"?org=acme", &p); st != 200 {
			t.Fatalf("GET proof = %d", st)
		}
		if li, _ := ev["log_index"].(float64); int64(li) != p.LogIndex {
			t.Errorf("event log_index = %v, proof's %d", ev["log_index"], p.LogIndex)
		}
		n, err := note.Open([]byte(p.Checkpoint.Note), note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("note.Open(checkpoint): %v", err)
		}
		lines := strings.Split(n.Text, "\n")
		size, _ := strconv.ParseInt(lines[1], 10, 64)
		rootb, _ := base64.StdEncoding.DecodeString(lines[2])
		if lines[0] != "agenttrail/acme" || size != p.TreeSize || len(rootb) != 32 {
			t.Fatalf("checkpoint = %q, want agenttrail/acme of %d leaves", n.Text, p.TreeSize)
		}
		var root, leaf tlog.Hash
		copy(root[:], rootb)
		copy(leaf[:], p.LeafHash)
		proof := make(tlog.RecordProof, len(p.Proof))
		for j, h := range p.Proof {
			copy(proof[j][:], h)
		}
		if err := tlog.CheckRecord(proof, size, root, p.LogIndex, leaf); err != nil {
			t.Fatalf("tlog.CheckRecord(event %d): %v", i, err)
		}
		// The leaf is the event the API answers: recompute it from the
		// event's JSON (the documented encoding).
		var e agenttrail.Event
		b, _ := json.Marshal(ev)
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		if h, _ := integrity.LeafHash(&e, nil); h != leaf {
			t.Errorf("leaf of event %d as the API answers it = %v, proof's %v", i, h, leaf)
		}
		// A wrong leaf does not verify.
		leaf[0] ^= 1
		if tlog.CheckRecord(proof, size, root, p.LogIndex, leaf) == nil {
			t.Fatal("tlog.CheckRecord(altered leaf) = nil")
		}
	}
}

// TestAPIScoped checks the integrity routes: every event answered carries
// log_index, checkpoints are listed and consistent, and a token of one org
// sees nothing of another's tree.
func TestAPIScoped(t *testing.T) {
	srv := servertest.Start(t)
	events := storetest.Events(2, 400, time.Now().Add(-time.Hour), time.Hour)
	ingest(t, srv, events[:200])
	admin := client.New(srv.URL, client.WithToken(srv.Token))
	first, err := admin.Proof(t.Context(), events[0].ID, events[0].Org)
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, srv, events[200:])
	second, err := admin.Proof(t.Context(), events[399].ID, events[399].Org)
	if err != nil {
		t.Fatal(err)
	}
	org := events[0].Org
	var page wire.Page
	getJSON(t, srv, srv.Token, "/v1/events?limit=200&org="+org, &page)
	for _, e := range page.Events {
		if e.LogIndex == nil {
			t.Fatalf("GET /v1/events: event %s has no log_index", e.ID)
		}
	}
	key, err := admin.IntegrityKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if second.Org == org {
		p, err := admin.Consistency(t.Context(), org, first.TreeSize, second.TreeSize)
		if err != nil {
			t.Fatal(err)
		}
		proof := make(tlog.TreeProof, len(p.Proof))
		for i, h := range p.Proof {
			copy(proof[i][:], h)
		}
		if err := integrity.CheckConsistency([]byte(first.Checkpoint.Note), []byte(second.Checkpoint.Note), key, proof); err != nil {
			t.Fatalf("CheckConsistency(first proof's checkpoint, second's): %v", err)
		}
	}
	var cps wire.Checkpoints
	if st := getJSON(t, srv, srv.Token, "/v1/integrity/checkpoints?org="+org, &cps); st != 200 || len(cps.Checkpoints) == 0 {
		t.Fatalf("GET checkpoints = %d, %d checkpoints", st, len(cps.Checkpoints))
	}
	if st := getJSON(t, srv, srv.Token, "/v1/integrity/checkpoint", nil); st != 400 {
		t.Errorf("GET checkpoint without org, token of every org = %d, want 400", st)
	}

	// A read token of another org.
	var tok wire.NewToken
	body, _ := json.Marshal(wire.TokenRequest{Name: "other", Role: "read", Org: "someone-else"})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	for _, path := range []string{
		"/v1/integrity/checkpoint?org=" + org,
		"/v1/integrity/checkpoints?org=" + org,
		"/v1/integrity/proof/" + url.PathEscape(events[0].ID) + "?org=" + org,
		"/v1/integrity/proof/" + url.PathEscape(events[0].ID),
		"/v1/integrity/consistency?from=1&to=2&org=" + org,
		"/v1/integrity/bundle?org=" + org,
	} {
		var out map[string]any
		st := getJSON(t, srv, tok.Secret, path, &out)
		if st == 200 {
			if cs, _ := out["checkpoints"].([]any); path == "/v1/integrity/checkpoints?org="+org && len(cs) == 0 {
				continue
			}
			t.Errorf("GET %s with a token of another org = 200 %v, want nothing of %s", path, out, org)
		}
	}
	_ = fmt.Sprint
}
