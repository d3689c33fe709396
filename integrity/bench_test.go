package integrity_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/storetest"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkIntegrity1M measures, on an embedded store of 1,000,000 events
// of one org (AGENTTRAIL_BENCH_EVENTS to change; AGENTTRAIL_BENCH_DATA
// names a directory to build the store in once and reuse): an inclusion
// proof (what GET /v1/integrity/proof does), a consistency proof, and a
// bundle of every event, written and verified.
//
//	go test -run '^$' -bench Integrity1M -benchtime 1x ./integrity
func BenchmarkIntegrity1M(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("AGENTTRAIL_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("AGENTTRAIL_BENCH_EVENTS: %v", err)
		}
	}
	dir := os.Getenv("AGENTTRAIL_BENCH_DATA")
	if dir == "" {
		dir = b.TempDir()
	}
	path := filepath.Join(dir, "integrity-bench.db")
	_, statErr := os.Stat(path)
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if statErr != nil {
		start := time.Now().Add(-30 * 24 * time.Hour)
		const batch = 10000
		for i := 0; i < n; i += batch {
			ev := storetest.Events(int64(i), min(batch, n-i), start.Add(time.Duration(i)*time.Second), time.Duration(batch)*time.Second)
			for j := range ev {
				ev[j].Org = "acme"
			}
			if _, err := s.Append(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	size, err := s.TreeSize(ctx, "acme")
	if err != nil || size < int64(n) {
		b.Fatalf("TreeSize = %d, %v, want %d", size, err, n)
	}
	key, err := integrity.LoadKey(filepath.Join(dir, "signing.key"), true)
	if err != nil {
		b.Fatal(err)
	}
	c, err := (&integrity.Signer{Log: s, Key: key}).SignOrg(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	b.Run("proof", func(b *testing.B) {
		for b.Loop() {
			i := r.Int64N(c.Size)
			p, err := tlog.ProveRecord(c.Size, i, integrity.HashReader(ctx, s, "acme"))
			if err != nil {
				b.Fatal(err)
			}
			leaf, err := s.ReadHashes(ctx, "acme", []int64{tlog.StoredHashIndex(0, i)})
			if err != nil {
				b.Fatal(err)
			}
			if err := tlog.CheckRecord(p, c.Size, c.Root, i, leaf[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency", func(b *testing.B) {
		for b.Loop() {
			old := 1 + r.Int64N(c.Size-1)
			if _, err := tlog.ProveTree(c.Size, old, integrity.HashReader(ctx, s, "acme")); err != nil {
				b.Fatal(err)
			}
		}
	})
	var bundle bytes.Buffer
	b.Run("bundle", func(b *testing.B) {
		for b.Loop() {
			bundle.Reset()
			st, err := integrity.WriteBundle(ctx, &bundle, s, agenttrail.Filter{Org: []string{"acme"}}, c, key.VerifierKey())
			if err != nil || int64(st.Events) != c.Size {
				b.Fatalf("WriteBundle = %+v, %v, want %d events", st, err, c.Size)
			}
		}
		b.ReportMetric(float64(bundle.Len())/1e6, "MB")
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			rep, err := integrity.Verify(bytes.NewReader(bundle.Bytes()), int64(bundle.Len()), key.VerifierKey())
			if err != nil || !rep.OK() || int64(rep.Verified) != c.Size {
				b.Fatalf("Verify = %d verified, %v, %v", rep.Verified, err, rep.Problems)
			}
		}
	})
}
