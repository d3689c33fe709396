package client

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/servertest"
)

// TestFailover gives the Client several servers: a request goes on to the
// next when one cannot be reached (a killed node) or answers 503 (a node
// that does not ingest), the Client stays with the one that answered, and
// every acknowledged event is in a store.
func TestFailover(t *testing.T) {
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + gone.Addr().String()
	gone.Close()
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"this node does not ingest","code":"unavailable"}`))
	}))
	defer busy.Close()
	a := servertest.Start(t)
	b := servertest.Start(t)

	ev := func(id string) []agenttrail.Event {
		e := testEvent(0)
		e.ID = id
		return []agenttrail.Event{e}
	}
	c := New(strings.Join([]string{dead, busy.URL, a.URL, b.URL}, ","), WithToken(servertest.Token))
	defer c.CloseIdleConnections()
	if res, err := c.Ingest(t.Context(), ev("f1")); err != nil || res.Accepted != 1 {
		t.Fatalf("Ingest past a dead and a busy node = %+v, %v", res, err)
	}
	if _, err := a.Store.Get(t.Context(), "f1", agenttrail.Filter{}); err != nil {
		t.Fatalf("f1 is not on the first live node: %v", err)
	}
	if got := c.base(); got != a.URL {
		t.Errorf("the Client sends to %s next, want the node that answered, %s", got, a.URL)
	}
	a.Stop() // the node the Client uses dies
	if res, err := c.Ingest(t.Context(), ev("f2")); err != nil || res.Accepted != 1 {
		t.Fatalf("Ingest after its node died = %+v, %v", res, err)
	}
	if _, err := b.Store.Get(t.Context(), "f2", agenttrail.Filter{}); err != nil {
		t.Fatalf("f2 is not on the surviving node: %v", err)
	}
	// A body that cannot be read twice is not sent twice.
	nd := New(dead+","+b.URL, WithToken(servertest.Token))
	if _, err := nd.IngestNDJSON(t.Context(), io.MultiReader(strings.NewReader(`{"id":"f3","actor_type":"agent","actor_id":"a","source":"shell","action":"ls","result":"success"}`))); err == nil {
		t.Error("IngestNDJSON failed over with a body it had already consumed")
	}
	// A 4xx is the caller's fault, the same on every node: no failover.
	bad := New(b.URL+","+a.URL, WithToken("wrong"))
	if _, err := bad.Ingest(t.Context(), ev("f4")); err == nil || bad.base() != b.URL {
		t.Errorf("a 401 failed over: %v, now at %s", err, bad.base())
	}
}
