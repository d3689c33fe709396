package postgres

import "github.com/agenttrail/agenttrail"

// PageSQL is pageSQL, for the plan tests of package postgres_test.
func PageSQL(q agenttrail.Query) (string, []any, error) {
	sql, a, err := pageSQL(q, q.Limit)
	return sql, a, err
}

// NoTree makes s leave the integrity tree out of Append, for
// BenchmarkAppendTree.
func NoTree(s *Store) { s.noTree = true }
