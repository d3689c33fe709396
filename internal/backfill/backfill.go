// Package backfill holds the loop of the stores' one-time backfill: the
// events stored before the integrity migration are given their tree leaves
// in transactions of a bounded number of events, each store's own.
package backfill

import (
	"context"
	"log/slog"
)

// Run calls chunk until it handles fewer than size events or fails, and
// logs how many it handled in all when there were any.
func Run(ctx context.Context, size int, chunk func(context.Context) (int, error), log *slog.Logger) error {
	total := 0
	for {
		n, err := chunk(ctx)
		total += n
		if err != nil {
			return err
		}
		if n < size {
			if total > 0 {
				log.Info("gave the events stored before integrity their tree leaves", "events", total)
			}
			return nil
		}
	}
}
