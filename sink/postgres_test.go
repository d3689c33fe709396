package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
)

// TestWebhookOnPostgres: the production store behaves as the embedded one
// for a sink: delivery in seq order from the checkpoint, resumed by a
// second run, the head read from the seq counter. It skips without
// AGENTTRAIL_TEST_POSTGRES and fails when that names a server it cannot
// reach.
func TestWebhookOnPostgres(t *testing.T) {
	base := os.Getenv("AGENTTRAIL_TEST_POSTGRES")
	if base == "" {
		t.Skip("PostgreSQL tests need a server: run with AGENTTRAIL_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("AGENTTRAIL_TEST_POSTGRES=%s: %v", base, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "agenttrail_sink_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	store, err := postgres.Open(ctx, u.String(), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	events := storetest.AppendAll(t, store, storetest.Events(13, 700, storetest.Base(), time.Hour), 350)
	rc, srv := newWebhookReceiver(t, "")
	c := testConfig(t, Config{Name: "hook", Type: TypeWebhook, URL: srv.URL, Batch: BatchLimits{MaxEvents: 100}})
	set, _ := New([]Config{c}, store, nil, nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { set.Runners()[0].Run(runCtx); close(done) }()
	waitCaughtUp(t, set, "hook")
	cancel()
	<-done
	if cp, _ := store.Checkpoint(ctx, "hook"); cp != events[len(events)-1].Seq {
		t.Fatalf("checkpoint saved on stop = %d, want %d", cp, events[len(events)-1].Seq)
	}
	more := storetest.AppendAll(t, store, storetest.Events(14, 300, storetest.Base().Add(2*time.Hour), time.Hour), 300)
	set2 := start(t, store, c)
	waitCaughtUp(t, set2, "hook")
	seqs, dups := rc.got()
	checkSeqs(t, seqs, append(events, more...), false)
	if dups != 0 {
		t.Errorf("a clean restart resent %d events", dups)
	}
}
