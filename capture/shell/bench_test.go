package shell

import (
	"context"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// discard is a Recorder that drops events, so the benchmark measures Run
// and not a queue.
type discard struct{}

func (discard) Record(context.Context, agenttrail.Event) {}

// BenchmarkRunOverhead measures what Run adds to running `true` with
// exec.Cmd.Run, both in the same run, and reports p50 and p99 of each and
// of the difference. Output reaches a buffer in both, as it would a
// terminal.
func BenchmarkRunOverhead(b *testing.B) {
	path, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	red, err := agenttrail.NewRedactor()
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Redactor: red}
	var plain, wrapped []time.Duration
	for b.Loop() {
		t0 := time.Now()
		c := exec.Command(path)
		c.Stdout, c.Stderr = &syncBuffer{}, &syncBuffer{}
		if err := c.Run(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		c = exec.Command(path)
		c.Stdout, c.Stderr = &syncBuffer{}, &syncBuffer{}
		if _, err := Run(context.Background(), discard{}, agent, c, opts); err != nil {
			b.Fatal(err)
		}
		plain, wrapped = append(plain, t1.Sub(t0)), append(wrapped, time.Since(t1))
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
		pq, wq := q(plain, p.q), q(wrapped, p.q)
		b.ReportMetric(pq, p.name+"-exec-µs")
		b.ReportMetric(wq, p.name+"-run-µs")
		b.ReportMetric(wq-pq, p.name+"-added-µs")
	}
	b.ReportMetric(0, "ns/op")
}
