package integrity

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/agenttrail/agenttrail"
	"golang.org/x/mod/sumdb/tlog"
)

// A bundle is a zip file an auditor verifies offline (Verify). It holds:
//
//	events.ndjson  the events of the range, in commit (seq) order, each with its log_index
//	leaves         the tree's leaf hashes of the range [first, end), 32 bytes each
//	tree.json      BundleTree: the range, the leaves the export's filters left out,
//	               and the hashes of the subtrees outside the range
//	checkpoint     the signed checkpoint (C2SP tlog-checkpoint signed note)
//	key            the server's verifier key, in note format
//
// Verify recomputes every event's leaf from its content, checks it against
// leaves, checks that leaves and the outside hashes give the signed root,
// and that every leaf of the range is an event or a leaf the filters left
// out: nothing deleted.
const (
	bundleEvents     = "events.ndjson"
	bundleLeaves     = "leaves"
	bundleTree       = "tree.json"
	bundleCheckpoint = "checkpoint"
	bundleKey        = "key"
)

// BundleTree is the tree.json of a bundle.
type BundleTree struct {
	Org      string `json:"org"`
	TreeSize int64  `json:"tree_size"`
	// First and End bound the range of leaves the bundle covers: First
	// included, End excluded.
	First int64 `json:"first"`
	End   int64 `json:"end"`
	// Excluded lists the leaves of the range whose events exist but the
	// export's filters left out, as [from, to] ranges (both included).
	Excluded [][2]int64 `json:"excluded"`
	// Hashes maps the tlog stored hash index of each maximal subtree
	// outside the range to its hash (base64).
	Hashes map[int64]tlog.Hash `json:"hashes"`
}

// BundleSource is what WriteBundle reads: the events and the tree.
type BundleSource interface {
	agenttrail.Querier
	Log
}

// BundleStats says what a bundle holds.
type BundleStats struct {
	Events   int
	Excluded int64
	First    int64
	End      int64
}

// WriteBundle writes the bundle of the events of f (whose Org must name
// exactly one org) that c, a signed checkpoint of that org, covers. The
// range runs from the first matching event's leaf to the last one's, or to
// c's size when f has no Until, so that events deleted from the end are
// missing leaves too; leaves of the range that f leaves out are listed as
// excluded. vkey is the verifier key written into the bundle.
func WriteBundle(ctx context.Context, w io.Writer, src BundleSource, f agenttrail.Filter, c Checkpoint, vkey string) (BundleStats, error) {
	if len(f.Org) != 1 {
		return BundleStats{}, agenttrail.Invalid("org", "a bundle holds exactly one org")
	}
	org := f.Org[0]
	if c.Org != org {
		return BundleStats{}, fmt.Errorf("bundle: checkpoint of org %q for org %q", c.Org, org)
	}
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	ew, err := zw.Create(bundleEvents)
	if err != nil {
		return BundleStats{}, err
	}
	bw := bufio.NewWriterSize(ew, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)

	// One pass over the org in commit order from its first matching event:
	// matching events are written, the others' leaves noted as excluded.
	st := BundleStats{First: -1}
	var excluded [][2]int64
	var lastMatch int64 = -1
	first, err := src.Query(ctx, agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq, Limit: 1})
	if err != nil {
		return st, err
	}
	if len(first.Events) > 0 {
		after := &agenttrail.Position{Seq: first.Events[0].Seq - 1}
		q := agenttrail.Query{Filter: agenttrail.Filter{Org: []string{org}}, Sort: agenttrail.SortSeq, Limit: 1000, After: after}
		for {
			p, err := src.Query(ctx, q)
			if err != nil {
				return st, err
			}
			for i := range p.Events {
				e := &p.Events[i]
				if e.LogIndex == nil || *e.LogIndex >= c.Size {
					continue
				}
				x := *e.LogIndex
				if !f.Match(e) {
					if n := len(excluded); n > 0 && excluded[n-1][1] == x-1 {
						excluded[n-1][1] = x
					} else {
						excluded = append(excluded, [2]int64{x, x})
					}
					continue
				}
				if err := enc.Encode(e); err != nil {
					return st, err
				}
				st.Events++
				if st.First < 0 || x < st.First {
					st.First = x
				}
				lastMatch = max(lastMatch, x)
			}
			if len(p.Events) == 0 {
				break
			}
			q.After = p.Next
		}
	}
	if err := bw.Flush(); err != nil {
		return st, err
	}
	st.End = lastMatch + 1
	if st.First < 0 {
		st.First, st.End = 0, 0
	} else if f.Until.IsZero() {
		st.End = c.Size
	}
	tree := BundleTree{Org: org, TreeSize: c.Size, First: st.First, End: st.End, Hashes: map[int64]tlog.Hash{}}
	for _, r := range excluded {
		r[0], r[1] = max(r[0], st.First), min(r[1], st.End-1)
		if r[0] <= r[1] {
			tree.Excluded = append(tree.Excluded, r)
			st.Excluded += r[1] - r[0] + 1
		}
	}
	// The leaf hashes of the range, read in slices.
	lw, err := zw.Create(bundleLeaves)
	if err != nil {
		return st, err
	}
	const slice = 8192
	idx := make([]int64, 0, slice)
	buf := make([]byte, 0, slice*tlog.HashSize)
	for lo := st.First; lo < st.End; lo += slice {
		idx = idx[:0]
		for i := lo; i < min(lo+slice, st.End); i++ {
			idx = append(idx, tlog.StoredHashIndex(0, i))
		}
		hs, err := src.ReadHashes(ctx, org, idx)
		if err != nil {
			return st, err
		}
		buf = buf[:0]
		for _, h := range hs {
			buf = append(buf, h[:]...)
		}
		if _, err := lw.Write(buf); err != nil {
			return st, err
		}
	}
	if out := outside(st.First, st.End, c.Size); len(out) > 0 {
		hs, err := src.ReadHashes(ctx, org, out)
		if err != nil {
			return st, err
		}
		for i, x := range out {
			tree.Hashes[x] = hs[i]
		}
	}
	for _, e := range []struct {
		name string
		body func() ([]byte, error)
	}{
		{bundleTree, func() ([]byte, error) { return json.MarshalIndent(tree, "", "  ") }},
		{bundleCheckpoint, func() ([]byte, error) { return c.Note, nil }},
		{bundleKey, func() ([]byte, error) { return []byte(vkey + "\n"), nil }},
	} {
		b, err := e.body()
		if err != nil {
			return st, err
		}
		fw, err := zw.Create(e.name)
		if err != nil {
			return st, err
		}
		if _, err := fw.Write(b); err != nil {
			return st, err
		}
	}
	return st, zw.Close()
}

// outside returns the stored hash indexes of the maximal complete subtrees
// of a tree of n leaves that lie wholly outside the leaves [lo, hi): with
// those leaves, they determine the tree's root (tlog.TreeHash).
func outside(lo, hi, n int64) []int64 {
	var out []int64
	var walk func(level int, k int64)
	walk = func(level int, k int64) {
		a, b := k<<level, (k+1)<<level
		switch {
		case b <= lo || a >= hi:
			out = append(out, tlog.StoredHashIndex(level, k))
		case a >= lo && b <= hi, level == 0:
		default:
			walk(level-1, 2*k)
			walk(level-1, 2*k+1)
		}
	}
	forSubtrees(n, walk)
	return out
}

// forSubtrees calls fn with the level and index of each maximal complete
// subtree of a tree of n leaves, left to right: the subtrees tlog.TreeHash
// combines.
func forSubtrees(n int64, fn func(level int, k int64)) {
	for start := int64(0); start < n; {
		level := 0
		for start+(int64(2)<<level) <= n && start%(int64(2)<<level) == 0 {
			level++
		}
		fn(level, start>>level)
		start += int64(1) << level
	}
}
