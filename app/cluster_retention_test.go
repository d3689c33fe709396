package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/internal/clustertest"
	"github.com/agenttrail/agenttrail/storetest"
)

// syncLog is a log both a node and the test use: the node writes, the test
// looks for a line.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// TestClusterRetentionRunsOnce runs two writer nodes with the same
// retention rules on one store: one of them runs retention, the other
// stands by, so the old trail is deleted once and the run is recorded
// once, with the count of what it deleted.
func TestClusterRetentionRunsOnce(t *testing.T) {
	dsn := clustertest.Postgres(t)
	natsCfg := cluster.Config{URL: clustertest.StartNATS(t).URL(), Stream: clustertest.Unique("T")}
	day := 24 * time.Hour
	key := signingKeyFile(t)
	var logs [2]*syncLog
	var nodes [2]*Main
	for i := range nodes {
		logs[i] = new(syncLog)
		m, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: dsn, Role: RoleWriter, NATS: natsCfg, SigningKey: key,
			Retain: day, RetentionRules: []RetentionRule{{Source: []string{"shell"}, Keep: 2 * day}},
			Logger: slog.New(slog.NewTextHandler(logs[i], nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		nodes[i] = m
	}
	// A year-old trail, all past every rule's cutoff.
	old := storetest.AppendAll(t, nodes[0].Store(), storetest.Events(11, 300, time.Now().Add(-365*day), time.Hour), 300)
	for _, m := range nodes {
		runStarted(t, m)
	}

	runs := func() []agenttrail.Event {
		p, err := nodes[0].Store().Query(t.Context(), agenttrail.Query{Filter: agenttrail.Filter{Action: []string{"retention.run"}}, Sort: agenttrail.SortSeq, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return p.Events
	}
	// Done once a run is recorded and the other node has found the lock
	// taken; a second run recorded fails at once.
	standby := "retention: active on another node; standing by"
	clustertest.WaitFor(t, "one node ran retention and the other stood by", time.Minute, func() bool {
		n := len(runs())
		if n > 1 {
			t.Fatalf("%d retention runs recorded by two writer nodes started together, want 1", n)
		}
		return n == 1 && (logs[0].has(standby) || logs[1].has(standby))
	})
	got := runs()
	if len(got) != 1 {
		t.Fatalf("%d retention runs recorded, want 1", len(got))
	}
	var meta struct {
		Retention struct {
			Deleted int64 `json:"deleted"`
		} `json:"retention"`
	}
	if err := json.Unmarshal(got[0].Metadata, &meta); err != nil || meta.Retention.Deleted != int64(len(old)) {
		t.Errorf("the run says it deleted %d events (%s, %v), want %d", meta.Retention.Deleted, got[0].Metadata, err, len(old))
	}
	if n := countEvents(t, nodes[1], agenttrail.Filter{NotSource: []string{agenttrail.SourceAudit}}); n != 0 {
		t.Errorf("after retention, %d old events remain", n)
	}
}
