package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFilterFlags: every filter flag reaches the Filter through the
// server's parser, repeatable ones accumulate, and a value the API refuses
// is refused here with the flag's name.
func TestFilterFlags(t *testing.T) {
	parse := func(args ...string) (filterFlags, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var ff filterFlags
		ff.register(fs)
		return ff, fs.Parse(args)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ff, err := parse("--actor-id", "a", "--actor-id", "b", "--status-code", "503", "--since", "2h",
		"--trace-id", strings.Repeat("AB", 16), "--q", "deploy")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ff.filter(now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.ActorID, []string{"a", "b"}) || !slices.Equal(f.StatusCode, []int{503}) ||
		!f.Since.Equal(now.Add(-2*time.Hour)) || f.Q != "deploy" || f.TraceID[0] != strings.Repeat("ab", 16) {
		t.Errorf("filter = %+v", f)
	}
	for _, tc := range []struct{ args, want []string }{
		{[]string{"--status-code", "abc"}, []string{"--status-code", "abc"}},
		{[]string{"--actor-type", "robot"}, []string{"--actor-type", "robot"}},
		{[]string{"--since", "1h", "--until", "2h"}, []string{"--since", "before until"}},
		{[]string{"--trace-id", "xyz"}, []string{"--trace-id"}},
	} {
		ff, err := parse(tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ff.filter(now)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("filter(%q) = %v, want an error with %q", tc.args, err, w)
			}
		}
	}
	ff, _ = parse("--since", "", "--q", "", "--until", "1h", "--until", "30m")
	if f, err := ff.filter(now); err != nil || !f.Since.IsZero() || f.Q != "" || !f.Until.Equal(now.Add(-30*time.Minute)) {
		t.Errorf("empty --since and --q, --until twice = %+v, %v; want no since, no q, the last until", f, err)
	}
	ff, _ = parse()
	ff.setDefault("since", "24h")
	if f, err := ff.filter(now); err != nil || !f.Since.Equal(now.Add(-24*time.Hour)) {
		t.Errorf("default since = %v, %v", f.Since, err)
	}
	ff, _ = parse("--since", "1h")
	ff.setDefault("since", "24h")
	if f, err := ff.filter(now); err != nil || !f.Since.Equal(now.Add(-time.Hour)) {
		t.Errorf("since given and defaulted = %v, %v", f.Since, err)
	}
}
