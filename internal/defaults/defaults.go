// Package defaults fills the unset fields of a configuration, by the
// convention every agenttrail Config follows: a zero (or negative) size,
// count or duration means the default, and a nil logger discards.
package defaults

import (
	"log/slog"
	"time"
)

// Positive sets *v to d unless *v is positive.
func Positive[T ~int | ~int64 | ~float64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Logger sets *l to a logger that discards when it is nil.
func Logger(l **slog.Logger) {
	if *l == nil {
		*l = slog.New(slog.DiscardHandler)
	}
}

// Clock sets *now to time.Now when it is nil: tests inject a clock, users
// get the real one.
func Clock(now *func() time.Time) {
	if *now == nil {
		*now = time.Now
	}
}
