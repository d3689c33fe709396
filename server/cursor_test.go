package server

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/storetest"
	"github.com/agenttrail/agenttrail/wire"
)

// TestCursorSigned checks that a cursor edited anywhere, truncated, or
// signed with another key is a 400 naming cursor, while the cursor as
// issued continues the query.
func TestCursorSigned(t *testing.T) {
	e := newEnv(t, options{})
	e.ingest(t, storetest.Events(31, 30, testNow.Add(-time.Hour), time.Minute))
	var page wire.Page
	e.getJSON(t, "/v1/events?limit=10", &page)
	if page.NextCursor == "" {
		t.Fatal("first page of 30 events has no next_cursor")
	}
	c := page.NextCursor
	inner, mac, ok := strings.Cut(c, ".")
	if !ok {
		t.Fatalf("cursor %q is not signed", c)
	}
	if r := e.get(t, "/v1/events?limit=10&cursor="+url.QueryEscape(c)); r.status != http.StatusOK {
		t.Fatalf("GET with the issued cursor = %d, want 200: %s", r.status, r.body)
	}

	raw, err := base64.RawURLEncoding.DecodeString(inner)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-9] ^= 1 // move the keyset position by one seq
	moved := base64.RawURLEncoding.EncodeToString(raw) + "." + mac
	other := newCursorSigner(nil).sign(inner)
	for name, bad := range map[string]string{
		"position edited":  moved,
		"truncated":        c[:len(c)-3],
		"mac removed":      inner,
		"signed elsewhere": other,
		"empty mac":        inner + ".",
		"garbage":          "x.y",
	} {
		r := e.get(t, "/v1/events?limit=10&cursor="+url.QueryEscape(bad))
		p := problemFrom(t, name, r, http.StatusBadRequest)
		if p.Field != "cursor" {
			t.Errorf("%s: problem field = %q, want cursor", name, p.Field)
		}
	}
}
