package shell

import (
	"context"
	"os/exec"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/redact"
)

// discard is a Recorder that drops events, so the benchmark measures Run
// and not a queue.
type discard struct{}

func (discard) Record(context.Context, agenttrail.Event) {}

// BenchmarkRunOverhead measures what Run adds to running `true` with
// exec.Cmd.Run, both in the same run, and reports p50 and p99 of each
// ("direct" is exec.Cmd.Run, "proxied" is Run) and of the difference.
func BenchmarkRunOverhead(b *testing.B) {
	path, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	red, err := redact.New()
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Redactor: red}
	// Output reaches a buffer on both sides, as it would a terminal.
	command := func() *exec.Cmd {
		c := exec.Command(path)
		c.Stdout, c.Stderr = &syncBuffer{}, &syncBuffer{}
		return c
	}
	capturetest.Latency(b,
		func() error { return command().Run() },
		func() error {
			_, err := Run(context.Background(), discard{}, agent, command(), opts)
			return err
		})
}
