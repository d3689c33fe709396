package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
	"golang.org/x/mod/sumdb/tlog"
)

var _ integrity.Log = (*Store)(nil)

// queryer is what both a transaction and the reader pool offer.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// trees grows the org trees of one write transaction.
type trees struct {
	w   *writer
	m   map[string]*orgTree
	buf []byte
}

// orgTree is one org's tree in a write transaction: its appender, and the
// leaf index of the org's next stored event. Append keeps next itself,
// since its appender may be appended to on another goroutine (sideWork).
type orgTree struct {
	a    *integrity.TreeAppender
	next int64
}

func newTrees(w *writer) *trees {
	return &trees{w: w, m: map[string]*orgTree{}}
}

// of returns org's tree, reading its size and the hashes of its right edge
// (all the older hashes appending reads) on first use. Its appender never
// reads through the connection after that: a read it would need is an
// error, so that appending may happen on another goroutine.
func (t *trees) of(org string) (*orgTree, error) {
	if o, ok := t.m[org]; ok {
		return o, nil
	}
	st := t.w.treeSize
	st.reserve(len(org))
	st.text(1, org)
	var size int64
	ok, err := st.next()
	if err != nil {
		return nil, err
	}
	if ok {
		size = st.colInt64(0)
		st.reset()
	}
	preloaded := false
	read := func(indexes []int64) ([]tlog.Hash, error) {
		if preloaded {
			return nil, fmt.Errorf("tree: hashes %v are not on the right edge the appender preloaded", indexes)
		}
		return t.readHashes(org, indexes)
	}
	a := integrity.NewTreeAppender(size, read)
	edge := a.Edge()
	hs, err := read(edge)
	if err != nil {
		return nil, err
	}
	a.Preload(edge, hs)
	preloaded = true
	o := &orgTree{a: a, next: size}
	t.m[org] = o
	return o, nil
}

// readHashes reads org's stored hashes at indexes, each from the chunk
// holding it.
func (t *trees) readHashes(org string, indexes []int64) ([]tlog.Hash, error) {
	st := t.w.readHash
	raw := make([][]byte, len(indexes))
	for i, x := range indexes {
		st.reserve(len(org))
		st.text(1, org)
		st.int64(2, x)
		ok, err := st.next()
		if err != nil {
			return nil, err
		}
		if ok {
			raw[i] = st.colBlob(0)
			st.reset()
		}
	}
	return integrity.ParseHashes(indexes, raw)
}

// add appends the stored event e, whose LogIndex is its org's next, as
// that leaf.
func (t *trees) add(e *agenttrail.Event) error {
	o, err := t.of(e.Org)
	if err != nil {
		return err
	}
	var leaf tlog.Hash
	leaf, t.buf = integrity.LeafHash(e, t.buf)
	if _, err := o.a.Append(leaf); err != nil {
		return err
	}
	o.next++
	return nil
}

// write inserts the hashes the batch added, one row per org and chunk.
func (t *trees) write() error {
	st := t.w.insertHashes
	for org, o := range t.m {
		for _, c := range o.a.Chunks() {
			st.reserve(len(org) + len(c.Hashes))
			st.text(1, org)
			st.int64(2, c.First)
			st.int64(3, c.Size)
			st.blob(4, c.Hashes)
			if _, err := st.exec(); err != nil {
				return err
			}
		}
	}
	return nil
}

const (
	treeSizeSQL = "SELECT coalesce((SELECT size FROM tree_hashes WHERE org = ? ORDER BY first DESC LIMIT 1), 0)"
	readHashSQL = `SELECT substr(hashes, (?2 - first) * 32 + 1, 32) FROM tree_hashes
		WHERE org = ?1 AND first <= ?2 ORDER BY first DESC LIMIT 1`
)

func treeSize(ctx context.Context, q queryer, org string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, treeSizeSQL, org).Scan(&n)
	return n, err
}

// readHashes reads each hash from the chunk holding it, in one statement.
func readHashes(ctx context.Context, q queryer, org string, indexes []int64) ([]tlog.Hash, error) {
	args := make([]any, 0, len(indexes)+1)
	args = append(args, org)
	for _, x := range indexes {
		args = append(args, x)
	}
	rows, err := q.QueryContext(ctx, `SELECT (SELECT substr(hashes, (x.column1 - first) * 32 + 1, 32) FROM tree_hashes
			WHERE org = ?1 AND first <= x.column1 ORDER BY first DESC LIMIT 1)
		FROM (VALUES (?2)`+strings.Repeat(", (?)", len(indexes)-1)+`) AS x`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	raw := make([][]byte, 0, len(indexes))
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		raw = append(raw, b)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return integrity.ParseHashes(indexes, raw)
}

const insertHashesSQL = "INSERT INTO tree_hashes (org, first, size, hashes) VALUES (?, ?, ?, ?)"

// TreeSize returns the number of leaves of org's tree.
func (s *Store) TreeSize(ctx context.Context, org string) (int64, error) {
	n, err := treeSize(ctx, s.r, org)
	if err != nil {
		return 0, formatError("tree size", err)
	}
	return n, nil
}

// ReadHashes returns org's stored hashes at indexes.
func (s *Store) ReadHashes(ctx context.Context, org string, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	hs, err := readHashes(ctx, s.r, org, indexes)
	if err != nil {
		return nil, formatError("read tree hashes", err)
	}
	return hs, nil
}

// TreeOrgs returns the orgs that have a tree.
func (s *Store) TreeOrgs(ctx context.Context) ([]string, error) {
	// A skip scan: one probe of the primary key per org.
	rows, err := s.r.QueryContext(ctx, `WITH RECURSIVE o(org) AS (
			SELECT min(org) FROM tree_hashes
			UNION ALL SELECT (SELECT min(org) FROM tree_hashes WHERE org > o.org) FROM o WHERE o.org IS NOT NULL)
		SELECT org FROM o WHERE org IS NOT NULL`)
	if err != nil {
		return nil, formatError("tree orgs", err)
	}
	defer rows.Close()
	var orgs []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, formatError("tree orgs", err)
		}
		orgs = append(orgs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, formatError("tree orgs", err)
	}
	return orgs, nil
}

// AddCheckpoint stores c; one of the same org and size is kept as it is.
func (s *Store) AddCheckpoint(ctx context.Context, c integrity.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts == nil {
		return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "sqlite: store is closed")
	}
	if err := ctx.Err(); err != nil {
		return formatError("add checkpoint", err)
	}
	// Through Append's connection: a write by another connection would
	// make it drop its page cache at its next transaction.
	st := s.wr.addCheckpoint
	st.reserve(len(c.Org) + len(c.Root) + len(c.Note))
	st.text(1, c.Org)
	st.int64(2, c.Size)
	st.blob(3, c.Root[:])
	st.int64(4, c.Time.UnixNano())
	st.blob(5, c.Note)
	if _, err := st.exec(); err != nil {
		return formatError("add checkpoint", err)
	}
	return nil
}

const addCheckpointSQL = `INSERT INTO checkpoints (org, size, root, signed_at, note)
	VALUES (?, ?, ?, ?, ?) ON CONFLICT (org, size) DO NOTHING`

// Checkpoints returns up to limit of org's checkpoints signed at or after
// since, oldest first.
func (s *Store) Checkpoints(ctx context.Context, org string, since time.Time, limit int) ([]integrity.Checkpoint, error) {
	return s.checkpoints(ctx, "WHERE org = ? AND signed_at >= ? ORDER BY size LIMIT ?", org, nanos(since), limit)
}

// LatestCheckpoint returns org's largest checkpoint.
func (s *Store) LatestCheckpoint(ctx context.Context, org string) (integrity.Checkpoint, error) {
	cs, err := s.checkpoints(ctx, "WHERE org = ? ORDER BY size DESC LIMIT 1", org)
	if err != nil {
		return integrity.Checkpoint{}, err
	}
	if len(cs) == 0 {
		return integrity.Checkpoint{}, agenttrail.Errorf(agenttrail.ENOTFOUND, "no checkpoint of org %q yet", org)
	}
	return cs[0], nil
}

func (s *Store) checkpoints(ctx context.Context, where string, args ...any) ([]integrity.Checkpoint, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT org, size, root, signed_at, note FROM checkpoints "+where, args...)
	if err != nil {
		return nil, formatError("checkpoints", err)
	}
	defer rows.Close()
	var out []integrity.Checkpoint
	for rows.Next() {
		var c integrity.Checkpoint
		var root []byte
		var at int64
		if err := rows.Scan(&c.Org, &c.Size, &root, &at, &c.Note); err != nil {
			return nil, formatError("checkpoints", err)
		}
		copy(c.Root[:], root)
		c.Time = time.Unix(0, at).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, formatError("checkpoints", err)
	}
	return out, nil
}
