// Package wait holds the one interruptible sleep of the background loops
// (the cluster's writer and standbys, the sinks' runners).
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends or wake receives; it reports false when
// ctx ended. A nil wake never receives.
func Sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}
