package integrity

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// TreeAppender adds leaves to one org's tree within a store's write
// transaction. The stored hashes of consecutive leaves are consecutive in
// tlog's numbering (tlog.StoredHashIndex), so a store keeps each batch's
// new hashes as one chunk: one row per org and commit, starting at stored
// hash index First, whatever the batch's size. A hash is read back from
// the chunk with the largest First at or below its index, at offset
// (index-First)*32.
//
// The zero value is not usable; NewTreeAppender makes one. It is not safe
// for concurrent use.
type TreeAppender struct {
	start, size int64
	out         []byte
	read        func(indexes []int64) ([]tlog.Hash, error)
	// cache holds the hashes read through read, by stored hash index.
	cache map[int64]tlog.Hash
}

// NewTreeAppender returns an appender to a tree of size leaves whose older
// stored hashes read returns (by tlog stored hash index, in order).
func NewTreeAppender(size int64, read func(indexes []int64) ([]tlog.Hash, error)) *TreeAppender {
	return &TreeAppender{start: size, size: size, read: read, cache: map[int64]tlog.Hash{}}
}

// Edge returns the stored hash indexes of the complete subtrees that make
// up the tree as it was when the appender was made: the only older hashes
// appending ever reads. A store that reads them with Preload first saves a
// round trip per read.
func (a *TreeAppender) Edge() []int64 {
	var out []int64
	forSubtrees(a.start, func(level int, k int64) { out = append(out, tlog.StoredHashIndex(level, k)) })
	return out
}

// Preload gives the appender the hashes at indexes (Edge's).
func (a *TreeAppender) Preload(indexes []int64, hashes []tlog.Hash) {
	for i, x := range indexes {
		a.cache[x] = hashes[i]
	}
}

// Size returns the number of leaves, those appended included.
func (a *TreeAppender) Size() int64 { return a.size }

// Append adds the leaf whose hash is leaf and returns its index.
func (a *TreeAppender) Append(leaf tlog.Hash) (int64, error) {
	n := a.size
	hs, err := tlog.StoredHashesForRecordHash(n, leaf, a)
	if err != nil {
		return 0, fmt.Errorf("tree: leaf %d: %w", n, err)
	}
	for _, h := range hs {
		a.out = append(a.out, h[:]...)
	}
	a.size++
	return n, nil
}

// ChunkHashes bounds the hashes of one chunk (32 KiB), so reading one
// hash reads a small value.
const ChunkHashes = 1024

// Chunk is a run of stored hashes as a store keeps it: the stored hash
// index of its first hash, the tree's size once its batch committed, and
// the hashes, 32 bytes each.
type Chunk struct {
	First  int64
	Size   int64
	Hashes []byte
}

// Chunks returns the hashes appended, in chunks of at most ChunkHashes;
// none when nothing was appended.
func (a *TreeAppender) Chunks() []Chunk {
	var out []Chunk
	first := tlog.StoredHashIndex(0, a.start)
	for off := 0; off < len(a.out); off += ChunkHashes * tlog.HashSize {
		end := min(off+ChunkHashes*tlog.HashSize, len(a.out))
		out = append(out, Chunk{First: first + int64(off/tlog.HashSize), Size: a.size, Hashes: a.out[off:end]})
	}
	return out
}

// ReadHashes implements tlog.HashReader over the hashes appended so far,
// reading the older ones in one call to read.
func (a *TreeAppender) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	first := tlog.StoredHashIndex(0, a.start)
	var miss []int64
	for i, x := range indexes {
		if x >= first {
			off := (x - first) * tlog.HashSize
			if off+tlog.HashSize > int64(len(a.out)) {
				return nil, fmt.Errorf("tree: hash %d is not stored yet", x)
			}
			copy(out[i][:], a.out[off:])
			continue
		}
		h, ok := a.cache[x]
		if !ok {
			miss = append(miss, x)
			continue
		}
		out[i] = h
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := a.read(miss)
	if err != nil {
		return nil, err
	}
	if len(got) != len(miss) {
		return nil, fmt.Errorf("tree: read %d hashes, want %d", len(got), len(miss))
	}
	for i, x := range miss {
		a.cache[x] = got[i]
	}
	for i, x := range indexes {
		if x < first {
			out[i] = a.cache[x]
		}
	}
	return out, nil
}

// ParseHashes converts the hashes a store read back, 32 bytes each and in
// the order of indexes, into tlog hashes. A missing one (a short value) is
// an error naming its index: the tree was damaged.
func ParseHashes(indexes []int64, raw [][]byte) ([]tlog.Hash, error) {
	if len(raw) != len(indexes) {
		return nil, fmt.Errorf("tree: read %d hashes, want %d", len(raw), len(indexes))
	}
	out := make([]tlog.Hash, len(indexes))
	for i, b := range raw {
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("tree: no stored hash %d", indexes[i])
		}
		copy(out[i][:], b)
	}
	return out, nil
}
