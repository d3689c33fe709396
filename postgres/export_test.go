package postgres

import "time"

// SetClock replaces the clock s seals days and creates partitions by.
func SetClock(s *Store, now func() time.Time) { s.now = now }
