package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// A spool record is an 8-byte header — the payload length and its CRC32C,
// both big-endian uint32 — followed by the payload (one JSON batch). Payloads
// are never empty, so a zero length marks the end of the written data (a
// file extended with zeros by a crash).
const (
	recordHeaderSize = 8
	segmentExt       = ".seg"
	ackExt           = ".ack"
)

// errSpoolFull is returned by append when the record would take the spool
// over its size bound.
var errSpoolFull = errors.New("spool is full")

// segment is one spool file. records counts its complete records not yet
// acknowledged; size is the file's size in bytes; start is where reading
// resumes (past the records an earlier process had acknowledged).
type segment struct {
	n       uint64
	size    int64
	records int
	start   int64
}

// spool is a durable FIFO of batches on disk: append-only segment files in
// one directory, each a run of records. Records are fsynced before append
// returns. A record cut short by a crash is found by its length and skipped;
// a damaged one by its CRC. A segment is deleted once all its records were
// acknowledged, so the spool shrinks as it is replayed. The read position in
// a segment is kept next to it (an .ack file, without fsync: losing it only
// means records are sent again, which the server deduplicates).
//
// The methods are safe for concurrent use. A directory may be used by one
// spool at a time.
type spool struct {
	mu       sync.Mutex
	dir      string
	maxBytes int64
	segBytes int64
	table    *crc32.Table

	segs    []segment // oldest first; the last is the writer's when w is set
	nextSeg uint64
	size    int64
	records int
	corrupt int64

	w    *os.File // the segment appends go to; nil until needed
	r    *os.File // reader on segs[0]
	rOff int64
	next int64 // rOff after the record last returned by peek
	peek bool  // a record was returned by peek and not yet acknowledged
}

// openSpool opens (creating it when needed) the spool in dir. Appends always
// go to a new segment, never after a tail an earlier process may have left
// half-written.
func openSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s := &spool{
		dir:      dir,
		maxBytes: maxBytes,
		segBytes: min(max(maxBytes/8, 64<<10), 16<<20),
		table:    crc32.MakeTable(crc32.Castagnoli),
		nextSeg:  1,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	var nums, acks []uint64
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ackExt); ok {
			if n, err := strconv.ParseUint(name, 10, 64); err == nil {
				acks = append(acks, n)
			}
			continue
		}
		name, ok := strings.CutSuffix(e.Name(), segmentExt)
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, n := range nums {
		seg, err := s.scan(n)
		if err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
		s.nextSeg = n + 1
		if seg.records == 0 {
			if err := os.Remove(s.path(n)); err != nil {
				return nil, fmt.Errorf("open spool: %w", err)
			}
			continue
		}
		s.segs = append(s.segs, seg)
		s.size += seg.size
		s.records += seg.records
	}
	for _, n := range acks {
		if !slices.ContainsFunc(s.segs, func(g segment) bool { return g.n == n }) {
			os.Remove(s.ackPath(n)) // left by a crash between two removes
		}
	}
	return s, nil
}

func (s *spool) path(n uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016d%s", n, segmentExt))
}

func (s *spool) ackPath(n uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016d%s", n, ackExt))
}

// readAck returns the read position saved for segment n, 0 when there is
// none or it is unreadable.
func (s *spool) readAck(n uint64) int64 {
	b, err := os.ReadFile(s.ackPath(n))
	if err != nil {
		return 0
	}
	off, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || off < 0 {
		return 0
	}
	return off
}

// scan counts the complete records of segment n by their headers; it stops at
// a header or payload cut short. CRCs are checked when records are read.
func (s *spool) scan(n uint64) (segment, error) {
	f, err := os.Open(s.path(n))
	if err != nil {
		return segment{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segment{}, err
	}
	seg := segment{n: n, size: fi.Size()}
	// Only an offset that is a record boundary is trusted: the ack file
	// is written without care for crashes.
	ack := s.readAck(n)
	var hdr [recordHeaderSize]byte
	for off := int64(0); ; {
		if off == ack {
			seg.start, seg.records = off, 0
		}
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			break
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		end := off + recordHeaderSize + n
		if n == 0 || end > seg.size {
			break
		}
		seg.records++
		off = end
	}
	return seg, nil
}

// append writes payload as one record and fsyncs it. It returns errSpoolFull
// when the spool would grow over its bound.
func (s *spool) append(payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := int64(recordHeaderSize + len(payload))
	if len(payload) == 0 {
		return errors.New("spool: empty record")
	}
	if len(payload) > 1<<31 || s.size+rec > s.maxBytes {
		return errSpoolFull
	}
	if s.w != nil && s.segs[len(s.segs)-1].size > 0 && s.segs[len(s.segs)-1].size+rec > s.segBytes {
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.w = nil
	}
	if s.w == nil {
		if err := s.create(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	seg := &s.segs[len(s.segs)-1]
	var hdr [recordHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(payload, s.table))
	_, err := s.w.Write(hdr[:])
	if err == nil {
		_, err = s.w.Write(payload)
	}
	if err == nil {
		err = s.w.Sync()
	}
	if err != nil {
		// Cut off what was written; if that fails too, later appends go
		// to a new segment and readers skip the torn tail.
		if terr := s.w.Truncate(seg.size); terr != nil {
			s.w.Close()
			s.w = nil
		}
		return fmt.Errorf("spool: %w", err)
	}
	seg.size += rec
	seg.records++
	s.size += rec
	s.records++
	return nil
}

// create starts a new segment for appends.
func (s *spool) create() error {
	n := s.nextSeg
	f, err := os.OpenFile(s.path(n), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// The new name must survive a crash as well as the records in it.
	if err := syncDir(s.dir); err != nil {
		f.Close()
		os.Remove(s.path(n))
		return err
	}
	s.nextSeg++
	s.w = f
	s.segs = append(s.segs, segment{n: n})
	return nil
}

// peekRecord returns the oldest unacknowledged record, or ok false when there
// is none. Damaged records on the way are skipped and counted.
func (s *spool) peekRecord() (payload []byte, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.records > 0 {
		seg := &s.segs[0]
		if s.r == nil {
			if s.r, err = os.Open(s.path(seg.n)); err != nil {
				return nil, false, fmt.Errorf("spool: %w", err)
			}
			s.rOff = seg.start
		}
		var hdr [recordHeaderSize]byte
		if _, err := s.r.ReadAt(hdr[:], s.rOff); err != nil {
			if !errors.Is(err, io.EOF) {
				return nil, false, fmt.Errorf("spool: %w", err)
			}
			if err := s.dropHead(); err != nil {
				return nil, false, err
			}
			continue
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		if n == 0 || s.rOff+recordHeaderSize+n > seg.size {
			if err := s.dropHead(); err != nil { // a torn tail
				return nil, false, err
			}
			continue
		}
		payload = make([]byte, n)
		if _, err := s.r.ReadAt(payload, s.rOff+recordHeaderSize); err != nil {
			return nil, false, fmt.Errorf("spool: %w", err)
		}
		end := s.rOff + recordHeaderSize + n
		if crc32.Checksum(payload, s.table) != binary.BigEndian.Uint32(hdr[4:]) {
			s.corrupt++
			s.rOff = end
			seg.records--
			s.records--
			if seg.records == 0 {
				if err := s.dropHead(); err != nil {
					return nil, false, err
				}
			}
			continue
		}
		s.next, s.peek = end, true
		return payload, true, nil
	}
	return nil, false, nil
}

// ack removes the record last returned by peekRecord, deleting its segment
// when that was the segment's last record.
func (s *spool) ack() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.peek {
		return nil
	}
	s.peek = false
	s.rOff = s.next
	s.segs[0].records--
	s.records--
	if s.segs[0].records == 0 {
		return s.dropHead()
	}
	return os.WriteFile(s.ackPath(s.segs[0].n), strconv.AppendInt(nil, s.rOff, 10), 0o600)
}

// dropHead deletes the oldest segment, and stops appending to it if it was
// the writer's.
func (s *spool) dropHead() error {
	seg := s.segs[0]
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
	if s.w != nil && len(s.segs) == 1 {
		s.w.Close()
		s.w = nil
	}
	s.segs = s.segs[1:]
	s.size -= seg.size
	s.records -= seg.records
	s.rOff, s.peek = 0, false
	if err := os.Remove(s.path(seg.n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(s.ackPath(seg.n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// pending returns how many records wait to be replayed.
func (s *spool) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// bytes returns the size of the spool's files.
func (s *spool) bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// corrupted returns how many damaged records were skipped.
func (s *spool) corrupted() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.corrupt
}

// close closes the open files; the spool's content stays for the next open.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.r != nil {
		err = s.r.Close()
		s.r = nil
	}
	if s.w != nil {
		err = errors.Join(err, s.w.Close())
		s.w = nil
	}
	return err
}

// syncDir fsyncs a directory so that names created or renamed in it are
// durable. Windows cannot open directories for syncing and does not need to.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
