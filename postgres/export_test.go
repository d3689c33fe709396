package postgres

import (
	"context"

	"github.com/agenttrail/agenttrail"
)

// PageSQL is pageSQL, for the plan tests of package postgres_test.
func PageSQL(q agenttrail.Query) (string, []any, error) {
	sql, a, err := pageSQL(q, q.Limit)
	return sql, a, err
}

// NoTree makes s leave the integrity tree out of Append, for
// BenchmarkAppendTree.
func NoTree(s *Store) { s.noTree = true }

// Reachable returns how many Appends the store keeps reachable from the one
// in flight last, through their predecessors.
func Reachable(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for f := s.tail; f != nil; f = f.prev {
		n++
	}
	return n
}

// Probing returns how many more Appends look their ids up first.
func Probing(s *Store) int32 { return s.probing.Load() }

// ProbeAppends is probeAppends.
const ProbeAppends = probeAppends

// Restarts returns how many attempts of Appends started over.
func Restarts(s *Store) int64 { return s.restarts.Load() }

// WorkMem returns the work_mem of one of the store's connections.
func WorkMem(s *Store) (string, error) {
	var v string
	err := s.pool.QueryRow(context.Background(), "SHOW work_mem").Scan(&v)
	return v, err
}
