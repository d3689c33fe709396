package wait

import (
	"context"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if Sleep(ctx, time.Hour, nil) {
		t.Error("Sleep with an ended context reported true")
	}
	wake := make(chan struct{}, 1)
	wake <- struct{}{}
	if !Sleep(t.Context(), time.Hour, wake) {
		t.Error("Sleep woken reported false")
	}
	if len(wake) != 0 {
		t.Error("Sleep did not take the wake-up")
	}
	if !Sleep(t.Context(), time.Nanosecond, nil) {
		t.Error("Sleep that ran its time reported false")
	}
}
