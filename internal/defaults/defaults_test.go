package defaults

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{{0, time.Second}, {-1, time.Second}, {2, 2}} {
		v := tc.in
		Positive(&v, time.Second)
		if v != tc.want {
			t.Errorf("Positive(%v, 1s) = %v, want %v", tc.in, v, tc.want)
		}
	}
	n := 7
	Positive(&n, 1000)
	if n != 7 {
		t.Errorf("Positive(7, 1000) = %d", n)
	}
}

func TestLogger(t *testing.T) {
	var l *slog.Logger
	Logger(&l)
	if l == nil || l.Enabled(context.Background(), slog.LevelError) {
		t.Fatalf("Logger(nil) = %v, want a logger that discards", l)
	}
	given := slog.Default()
	Logger(&given)
	if given != slog.Default() {
		t.Error("Logger replaced a logger that was set")
	}
}
