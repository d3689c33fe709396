package ingest_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/sqlite"
)

// BenchmarkSpoolStoreDown measures the write path while the store is down:
// each Append fails at the store, then the batch is encoded and written to
// the spool with one fsync. It reports events/s; ns/op is per batch.
func BenchmarkSpoolStoreDown(b *testing.B) {
	for _, size := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "trail.db"), sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			store := &countingStore{Store: db}
			outage(store).Store(true)
			sp, err := ingest.OpenSpool(store, ingest.SpoolConfig{Dir: b.TempDir(), MaxBytes: 64 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			batch := events(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := sp.Append(b.Context(), batch)
				if err != nil || res.Spooled != size {
					b.Fatalf("Append = %+v, %v", res, err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
