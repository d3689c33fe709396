package capturetest

import (
	"slices"
	"testing"
	"time"
)

// WarmRounds is how many times the latency benchmarks call each side
// before measuring, so connection pools and caches are filled on both.
const WarmRounds = 20

// Latency measures what a proxy adds to one call: it calls direct and then
// proxied alternately in one b.Loop, so both see the same machine load,
// and reports p50 and p99 of each and of their difference in microseconds
// (p50-direct-µs, p50-proxied-µs, p50-added-µs, and so for p99) instead of
// ns/op. Each side is warmed up first. The first error either returns
// fails the benchmark. Latency must be called from the benchmark's
// goroutine.
func Latency(b *testing.B, direct, proxied func() error) {
	b.Helper()
	timed := func(f func() error) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			t0 := time.Now()
			err := f()
			return time.Since(t0), err
		}
	}
	MeasuredLatency(b, timed(direct), timed(proxied))
}

// MeasuredLatency is Latency for calls that time themselves, such as to
// the first token of a stream rather than to its end: each returns the
// duration to report.
func MeasuredLatency(b *testing.B, direct, proxied func() (time.Duration, error)) {
	b.Helper()
	call := func(side string, f func() (time.Duration, error)) time.Duration {
		d, err := f()
		if err != nil {
			b.Fatalf("%s call: %v", side, err)
		}
		return d
	}
	for range WarmRounds {
		call("direct", direct)
		call("proxied", proxied)
	}
	var d, p []time.Duration
	b.ResetTimer()
	for b.Loop() {
		d = append(d, call("direct", direct))
		p = append(p, call("proxied", proxied))
	}
	b.StopTimer()
	report(b, d, p)
}

// report reports p50 and p99 of the direct and proxied durations and of
// their difference in microseconds, instead of ns/op.
func report(b *testing.B, direct, proxied []time.Duration) {
	b.Helper()
	if len(direct) == 0 || len(proxied) == 0 {
		b.Fatal("capturetest: no latencies to report")
	}
	q := func(s []time.Duration, p float64) float64 {
		s = slices.Clone(s)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))].Nanoseconds()) / 1e3
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p99", 0.99}} {
		dq, pq := q(direct, p.q), q(proxied, p.q)
		b.ReportMetric(dq, p.name+"-direct-µs")
		b.ReportMetric(pq, p.name+"-proxied-µs")
		b.ReportMetric(pq-dq, p.name+"-added-µs")
	}
	b.ReportMetric(0, "ns/op")
}
