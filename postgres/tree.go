package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

var _ integrity.Log = (*Store)(nil)

// treeSizesSQL selects the tree size of each org of $1.
const treeSizesSQL = `SELECT o, coalesce((SELECT size FROM tree_hashes WHERE org = o ORDER BY first DESC LIMIT 1), 0)
	FROM unnest($1::text[]) AS o`

// treeSizes returns the tree size of each org.
func treeSizes(ctx context.Context, q querier, orgs []string) (map[string]int64, error) {
	rows, err := q.Query(ctx, treeSizesSQL, orgs)
	return scanTreeSizes(rows, err)
}

// scanTreeSizes reads the rows of treeSizesSQL.
func scanTreeSizes(rows pgx.Rows, err error) (map[string]int64, error) {
	if err != nil {
		return nil, fmt.Errorf("tree size: %w", err)
	}
	sizes := map[string]int64{}
	var org string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&org, &n}, func() error {
		sizes[org] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("tree size: %w", err)
	}
	return sizes, nil
}

// readHashes reads each hash from the chunk holding it, in one statement.
func readHashes(ctx context.Context, q querier, org string, indexes []int64) ([]tlog.Hash, error) {
	rows, err := q.Query(ctx, `SELECT (SELECT substring(hashes FROM (x - first)::int * 32 + 1 FOR 32) FROM tree_hashes
			WHERE org = $1 AND first <= x ORDER BY first DESC LIMIT 1)
		FROM unnest($2::bigint[]) WITH ORDINALITY AS u (x, i) ORDER BY i`, org, indexes)
	if err != nil {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	raw, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	return integrity.ParseHashes(indexes, raw)
}

// openTrees returns an appender for each org's tree, with the hashes
// appending will read already loaded: one round trip, whatever the batch,
// and one more to read the sizes when sizes is nil.
func openTrees(ctx context.Context, tx pgx.Tx, orgs []string, sizes map[string]int64) (map[string]*integrity.TreeAppender, error) {
	if sizes == nil {
		var err error
		if sizes, err = treeSizes(ctx, tx, orgs); err != nil {
			return nil, err
		}
	}
	trees := make(map[string]*integrity.TreeAppender, len(orgs))
	var edgeOrgs []string
	var edge []int64
	for _, org := range orgs {
		a := integrity.NewTreeAppender(sizes[org], func(indexes []int64) ([]tlog.Hash, error) {
			return readHashes(ctx, tx, org, indexes)
		})
		trees[org] = a
		for _, x := range a.Edge() {
			edgeOrgs, edge = append(edgeOrgs, org), append(edge, x)
		}
	}
	if len(edge) == 0 {
		return trees, nil
	}
	rows, err := tx.Query(ctx, `SELECT (SELECT substring(hashes FROM (u.x - first)::int * 32 + 1 FOR 32) FROM tree_hashes
			WHERE org = u.org AND first <= u.x ORDER BY first DESC LIMIT 1)
		FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u (org, x, i) ORDER BY i`, edgeOrgs, edge)
	if err != nil {
		return nil, fmt.Errorf("read tree edge: %w", err)
	}
	raw, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("read tree edge: %w", err)
	}
	hs, err := integrity.ParseHashes(edge, raw)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(edge); {
		j := i
		for j < len(edge) && edgeOrgs[j] == edgeOrgs[i] {
			j++
		}
		trees[edgeOrgs[i]].Preload(edge[i:j], hs[i:j])
		i = j
	}
	return trees, nil
}

// orgsOf returns the distinct orgs of events, in first-seen order.
func orgsOf(events []*agenttrail.Event) []string {
	var orgs []string
	seen := map[string]bool{}
	for _, e := range events {
		if !seen[e.Org] {
			seen[e.Org] = true
			orgs = append(orgs, e.Org)
		}
	}
	return orgs
}

// leafHashes returns the leaf hash of each event.
func leafHashes(events []*agenttrail.Event) []tlog.Hash {
	hs := make([]tlog.Hash, len(events))
	var buf []byte
	for i, e := range events {
		hs[i], buf = integrity.LeafHash(e, buf)
	}
	return hs
}

// queueTreeRows queues the insert of appendLeaves' rows.
func queueTreeRows(b *pgx.Batch, rows [][]any) {
	if len(rows) == 0 {
		return
	}
	// In key order, so two writers inserting the same chunks wait for
	// each other rather than deadlock.
	slices.SortFunc(rows, func(a, b []any) int {
		return cmp.Or(strings.Compare(a[0].(string), b[0].(string)), cmp.Compare(a[1].(int64), b[1].(int64)))
	})
	orgs, firsts, sizes, hashes := make([]string, len(rows)), make([]int64, len(rows)), make([]int64, len(rows)), make([][]byte, len(rows))
	for i, r := range rows {
		orgs[i], firsts[i], sizes[i], hashes[i] = r[0].(string), r[1].(int64), r[2].(int64), r[3].([]byte)
	}
	b.Queue(`INSERT INTO tree_hashes (org, first, size, hashes)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[])`, orgs, firsts, sizes, hashes)
}

// appendLeaves numbers events (stored in this order) in their orgs'
// trees, setting LogIndex, from their leaf hashes, and returns the
// tree_hashes rows to COPY.
func appendLeaves(trees map[string]*integrity.TreeAppender, orgs []string, events []*agenttrail.Event, leaves []tlog.Hash) ([][]any, error) {
	for i, e := range events {
		n, err := trees[e.Org].Append(leaves[i])
		if err != nil {
			return nil, err
		}
		e.LogIndex = &n
	}
	var rows [][]any
	for _, org := range orgs {
		for _, c := range trees[org].Chunks() {
			rows = append(rows, []any{org, c.First, c.Size, c.Hashes})
		}
	}
	return rows, nil
}

// leafRows numbers events (stored in this order) in their orgs' trees,
// setting LogIndex, and returns the tree_hashes rows to COPY.
func leafRows(ctx context.Context, tx pgx.Tx, events []*agenttrail.Event) ([][]any, error) {
	orgs := orgsOf(events)
	trees, err := openTrees(ctx, tx, orgs, nil)
	if err != nil {
		return nil, err
	}
	return appendLeaves(trees, orgs, events, leafHashes(events))
}

// TreeSize returns the number of leaves of org's tree.
func (s *Store) TreeSize(ctx context.Context, org string) (int64, error) {
	sizes, err := treeSizes(ctx, s.pool, []string{org})
	if err != nil {
		return 0, formatError("postgres", err)
	}
	return sizes[org], nil
}

// ReadHashes returns org's stored hashes at indexes.
func (s *Store) ReadHashes(ctx context.Context, org string, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	hs, err := readHashes(ctx, s.pool, org, indexes)
	if err != nil {
		return nil, formatError("postgres", err)
	}
	return hs, nil
}

// TreeOrgs returns the orgs that have a tree.
func (s *Store) TreeOrgs(ctx context.Context) ([]string, error) {
	// A skip scan: one probe of the primary key per org.
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE o(org) AS (
			SELECT min(org) FROM tree_hashes
			UNION ALL SELECT (SELECT min(org) FROM tree_hashes WHERE org > o.org) FROM o WHERE o.org IS NOT NULL)
		SELECT org FROM o WHERE org IS NOT NULL`)
	if err != nil {
		return nil, formatError("postgres: tree orgs", err)
	}
	orgs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, formatError("postgres: tree orgs", err)
	}
	return orgs, nil
}

// AddCheckpoint stores c; one of the same org and size is kept as it is.
func (s *Store) AddCheckpoint(ctx context.Context, c integrity.Checkpoint) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO checkpoints (org, size, root, signed_at, note)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org, size) DO NOTHING`,
		c.Org, c.Size, c.Root[:], c.Time, c.Note); err != nil {
		return formatError("postgres: add checkpoint", err)
	}
	return nil
}

// Checkpoints returns up to limit of org's checkpoints signed at or after
// since, oldest first.
func (s *Store) Checkpoints(ctx context.Context, org string, since time.Time, limit int) ([]integrity.Checkpoint, error) {
	return s.checkpoints(ctx, "WHERE org = $1 AND signed_at >= $2 ORDER BY size LIMIT $3", org, since, limit)
}

// LatestCheckpoint returns org's largest checkpoint.
func (s *Store) LatestCheckpoint(ctx context.Context, org string) (integrity.Checkpoint, error) {
	cs, err := s.checkpoints(ctx, "WHERE org = $1 ORDER BY size DESC LIMIT 1", org)
	if err != nil {
		return integrity.Checkpoint{}, err
	}
	if len(cs) == 0 {
		return integrity.Checkpoint{}, agenttrail.Errorf(agenttrail.ENOTFOUND, "no checkpoint of org %q yet", org)
	}
	return cs[0], nil
}

func (s *Store) checkpoints(ctx context.Context, where string, args ...any) ([]integrity.Checkpoint, error) {
	rows, err := s.pool.Query(ctx, "SELECT org, size, root, signed_at, note FROM checkpoints "+where, args...)
	if err != nil {
		return nil, formatError("postgres: checkpoints", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (integrity.Checkpoint, error) {
		var c integrity.Checkpoint
		var root []byte
		err := row.Scan(&c.Org, &c.Size, &root, &c.Time, &c.Note)
		copy(c.Root[:], root)
		c.Time = c.Time.UTC()
		return c, err
	})
	if err != nil {
		return nil, formatError("postgres: checkpoints", err)
	}
	return out, nil
}
