package backfill

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name   string
		chunks []int // what each call handles
		fail   bool  // the last call fails
		calls  int
		logged string
	}{
		{name: "nothing to do", chunks: []int{0}, calls: 1},
		{name: "one short chunk", chunks: []int{3}, calls: 1, logged: "events=3"},
		{name: "full chunks then empty", chunks: []int{5, 5, 0}, calls: 3, logged: "events=10"},
		{name: "full chunks then short", chunks: []int{5, 2}, calls: 2, logged: "events=7"},
		{name: "failure", chunks: []int{5, 1}, fail: true, calls: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			calls := 0
			boom := errors.New("boom")
			err := Run(t.Context(), 5, func(context.Context) (int, error) {
				if calls >= len(tt.chunks) {
					t.Fatalf("call %d after the chunk that ended it", calls+1)
				}
				n := tt.chunks[calls]
				calls++
				if tt.fail && calls == len(tt.chunks) {
					return n, boom
				}
				return n, nil
			}, slog.New(slog.NewTextHandler(&buf, nil)))
			if tt.fail != errors.Is(err, boom) || (!tt.fail && err != nil) {
				t.Errorf("err = %v, want failure %t", err, tt.fail)
			}
			if calls != tt.calls {
				t.Errorf("%d calls, want %d", calls, tt.calls)
			}
			if got := buf.String(); (tt.logged == "") != (got == "") || !strings.Contains(got, tt.logged) {
				t.Errorf("logged %q, want a line with %q", got, tt.logged)
			}
		})
	}
}
