package integrity

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/agenttrail/agenttrail"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Problem is one thing Verify found wrong: what, and the event (its id and
// leaf index) when it concerns one.
type Problem struct {
	ID    string // "" when the problem is not one event's
	Index int64  // -1 when the problem is not one leaf's
	What  string // "content altered", "missing leaf 5..9", "out of order", "signature invalid", "unknown key", …
}

func (p Problem) String() string {
	switch {
	case p.ID != "":
		return fmt.Sprintf("event %s leaf %d: %s", p.ID, p.Index, p.What)
	case p.Index >= 0:
		return fmt.Sprintf("leaf %d: %s", p.Index, p.What)
	}
	return p.What
}

// Report is what Verify found.
type Report struct {
	Org        string
	Checkpoint Checkpoint
	First, End int64 // the range of leaves the bundle covers
	Events     int   // events in the bundle
	Verified   int   // events whose leaf is in the signed tree, unaltered, in order
	Excluded   int64 // leaves the export's filters left out
	Problems   []Problem
}

// OK reports whether everything verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) add(id string, index int64, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{ID: id, Index: index, What: fmt.Sprintf(format, args...)})
}

// maxProblems bounds the problems one Verify lists; a summary says more.
const maxProblems = 10000

// Verify checks the bundle in r (of size bytes) offline: that its
// checkpoint is signed by vkey (the bundle's own key when vkey is empty:
// the auditor should pass the key published by the server instead), that
// the bundle's leaves and outside hashes give the signed root, that each
// event's content gives the leaf at its log_index, that events come in
// commit order, and that no leaf of the range is missing. It returns an
// error only when the bundle cannot be read at all; everything else is a
// Problem in the report.
func Verify(r io.ReaderAt, size int64, vkey string) (*Report, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	read := func(name string) ([]byte, error) {
		f, err := zr.Open(name)
		if err != nil {
			return nil, fmt.Errorf("bundle has no %s: %w", name, err)
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	rep := &Report{}
	msg, err := read(bundleCheckpoint)
	if err != nil {
		return nil, err
	}
	tb, err := read(bundleTree)
	if err != nil {
		return nil, err
	}
	var tree BundleTree
	if err := json.Unmarshal(tb, &tree); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundleTree, err)
	}
	if vkey == "" {
		k, err := read(bundleKey)
		if err != nil {
			return nil, err
		}
		vkey = strings.TrimSpace(string(k))
	}
	rep.Org, rep.First, rep.End = tree.Org, tree.First, tree.End
	c, err := OpenCheckpoint(msg, vkey)
	var unknown *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unknown):
		rep.add("", -1, "checkpoint: unknown key (not signed by %s)", keyName(vkey))
	case errors.As(err, &invalid):
		rep.add("", -1, "checkpoint: signature invalid")
	case err != nil:
		rep.add("", -1, "checkpoint: %v", err)
	}
	if err != nil {
		// Without a trusted root nothing else can be proven; the checks
		// below still run against the root the checkpoint states, so an
		// auditor sees every other problem too.
		n, perr := note.Open(msg, note.VerifierList())
		var text string
		if perr != nil {
			var un *note.UnverifiedNoteError
			if errors.As(perr, &un) {
				text = un.Note.Text
			}
		} else {
			text = n.Text
		}
		c.Org, c.Size, c.Root, _ = ParseCheckpoint([]byte(text))
	}
	rep.Checkpoint = c
	if c.Org != tree.Org || c.Size != tree.TreeSize {
		rep.add("", -1, "tree.json says org %q of %d leaves, the checkpoint org %q of %d", tree.Org, tree.TreeSize, c.Org, c.Size)
	}
	if tree.First < 0 || tree.First > tree.End || tree.End > c.Size {
		rep.add("", -1, "tree.json range [%d, %d) is not within the checkpoint's %d leaves", tree.First, tree.End, c.Size)
		return rep, nil
	}
	leaves, err := read(bundleLeaves)
	if err != nil {
		return nil, err
	}
	if int64(len(leaves)) != (tree.End-tree.First)*tlog.HashSize {
		rep.add("", -1, "leaves holds %d bytes, want %d for leaves %d..%d", len(leaves), (tree.End-tree.First)*tlog.HashSize, tree.First, tree.End-1)
		return rep, nil
	}
	leafAt := func(x int64) (h tlog.Hash) {
		copy(h[:], leaves[(x-tree.First)*tlog.HashSize:])
		return h
	}
	if root, err := rangeRoot(&tree, leafAt); err != nil {
		rep.add("", -1, "tree hashes: %v", err)
	} else if root != c.Root {
		rep.add("", -1, "tree hashes: leaves %d..%d and the hashes around them do not give the signed root: the bundle's tree was altered", tree.First, tree.End-1)
	}

	// The events, against the leaves.
	seen := make([]bool, tree.End-tree.First)
	for _, x := range tree.Excluded {
		for i := max(x[0], tree.First); i <= min(x[1], tree.End-1); i++ {
			seen[i-tree.First] = true
			rep.Excluded++
		}
	}
	f, err := zr.Open(bundleEvents)
	if err != nil {
		return nil, fmt.Errorf("bundle has no %s: %w", bundleEvents, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 4<<20)
	prevIdx, prevSeq := int64(-1), int64(0)
	// Lines are decoded and hashed in parallel, a slice at a time, and
	// checked in file order: order is what the checks are about.
	check := func(lines []decoded) {
		for i := range lines {
			d := &lines[i]
			if len(rep.Problems) >= maxProblems {
				return
			}
			if d.err != nil {
				rep.add("", -1, "%s line %d: not an event: %v", bundleEvents, d.line, d.err)
				continue
			}
			e := &d.event
			rep.Events++
			if e.LogIndex == nil {
				rep.add(e.ID, -1, "no log_index")
				continue
			}
			x := *e.LogIndex
			if x < tree.First || x >= tree.End {
				rep.add(e.ID, x, "log_index outside the bundle's range %d..%d", tree.First, tree.End-1)
				continue
			}
			ok := true
			if x <= prevIdx || e.Seq <= prevSeq {
				rep.add(e.ID, x, "out of order (after leaf %d, seq %d; this event has seq %d)", prevIdx, prevSeq, e.Seq)
				ok = false
			}
			prevIdx, prevSeq = max(prevIdx, x), max(prevSeq, e.Seq)
			if seen[x-tree.First] {
				rep.add(e.ID, x, "duplicate leaf")
				continue
			}
			seen[x-tree.First] = true
			if d.leaf != leafAt(x) {
				rep.add(e.ID, x, "content altered")
				ok = false
			}
			if ok {
				rep.Verified++
			}
		}
	}
	const slice = 4096
	var raw [][]byte
	var lineNo []int
	line := 0
	flush := func() {
		check(decodeLines(raw, lineNo))
		raw, lineNo = raw[:0], lineNo[:0]
	}
	for sc.Scan() && len(rep.Problems) < maxProblems {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		raw, lineNo = append(raw, bytes.Clone(sc.Bytes())), append(lineNo, line)
		if len(raw) == slice {
			flush()
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		rep.add("", -1, "%s: %v", bundleEvents, err)
	}
	for i := int64(0); i < int64(len(seen)); i++ {
		if seen[i] {
			continue
		}
		j := i
		for j+1 < int64(len(seen)) && !seen[j+1] {
			j++
		}
		if i == j {
			rep.add("", tree.First+i, "missing leaf %d", tree.First+i)
		} else {
			rep.add("", tree.First+i, "missing leaf %d..%d", tree.First+i, tree.First+j)
		}
		i = j
	}
	return rep, nil
}

// decoded is one line of events.ndjson, decoded and hashed.
type decoded struct {
	line  int
	event agenttrail.Event
	leaf  tlog.Hash
	err   error
}

// decodeLines decodes and hashes lines on every core.
func decodeLines(lines [][]byte, lineNo []int) []decoded {
	out := make([]decoded, len(lines))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(lines)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var buf []byte
			for i := w; i < len(lines); i += workers {
				d := &out[i]
				d.line = lineNo[i]
				if d.err = json.Unmarshal(lines[i], &d.event); d.err == nil {
					d.leaf, buf = LeafHash(&d.event, buf)
				}
			}
		})
	}
	wg.Wait()
	return out
}

// rangeRoot computes the root of the tree from the leaves [First, End) and
// the outside hashes of tree, with tlog.TreeHash and tlog.NodeHash.
func rangeRoot(tree *BundleTree, leafAt func(int64) tlog.Hash) (tlog.Hash, error) {
	var node func(level int, k int64) (tlog.Hash, error)
	node = func(level int, k int64) (tlog.Hash, error) {
		a, b := k<<level, (k+1)<<level
		if b <= tree.First || a >= tree.End {
			h, ok := tree.Hashes[tlog.StoredHashIndex(level, k)]
			if !ok {
				return h, fmt.Errorf("no hash of leaves %d..%d", a, b-1)
			}
			return h, nil
		}
		if level == 0 {
			return leafAt(a), nil
		}
		l, err := node(level-1, 2*k)
		if err != nil {
			return l, err
		}
		r, err := node(level-1, 2*k+1)
		if err != nil {
			return r, err
		}
		return tlog.NodeHash(l, r), nil
	}
	if tree.TreeSize == 0 {
		return tlog.TreeHash(0, nil)
	}
	return tlog.TreeHash(tree.TreeSize, tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			level, k := tlog.SplitStoredHashIndex(x)
			h, err := node(level, k)
			if err != nil {
				return nil, err
			}
			out[i] = h
		}
		return out, nil
	}))
}

// keyName returns the name and hash of a verifier key, for messages.
func keyName(vkey string) string {
	f := strings.SplitN(vkey, "+", 3)
	if len(f) < 2 {
		return "the given key"
	}
	return f[0] + "+" + f[1]
}
