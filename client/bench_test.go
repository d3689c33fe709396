package client

import (
	"context"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/servertest"
)

// BenchmarkRecord measures what Record costs the agent: with the real server
// up, and with nothing listening (the Recorder spools, and drops what the
// queue and spool path cannot take). dropped/op shows how much of the
// benchmark's flood did not fit; Record's cost does not depend on it.
func BenchmarkRecord(b *testing.B) {
	b.Run("server=up", func(b *testing.B) {
		srv := servertest.StartAt(b, "127.0.0.1:0", b.TempDir())
		benchRecord(b, srv.URL, false)
	})
	b.Run("server=down", func(b *testing.B) {
		benchRecord(b, "http://"+freeAddr(b), false)
	})
	b.Run("server=down/parallel", func(b *testing.B) {
		benchRecord(b, "http://"+freeAddr(b), true)
	})
}

func benchRecord(b *testing.B, url string, parallel bool) {
	c := New(url, WithToken(servertest.Token))
	defer c.CloseIdleConnections()
	r, err := NewRecorder(c, RecorderConfig{SpoolDir: b.TempDir(), Heartbeat: HeartbeatOff, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e := testEvent(1)
	e.Metadata = nil
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Record(ctx, e)
			}
		})
	} else {
		for b.Loop() {
			r.Record(ctx, e)
		}
	}
	b.StopTimer()
	st := r.Stats()
	b.ReportMetric(float64(st.Dropped[DropQueueFull])/float64(b.N), "dropped/op")
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := r.Close(cctx); err != nil {
		b.Fatal(err)
	}
}
