package ingest

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
	"strconv"
	"strings"
	"sync"
)

// The server's spool uses the record format of the SDK's spool (client/),
// kept as its own small implementation here: the SDK must stay stdlib-only
// and self-contained, and the two evolve separately. A record is an 8-byte
// header — the payload length and its CRC32C, both big-endian uint32 —
// followed by the payload. Payloads are never empty, so a zero length marks
// the end of what was written (a file a crash extended with zeros).
const (
	recordHeaderSize = 8
	segmentExt       = ".seg"
	ackExt           = ".ack"
	maxSegmentBytes  = 64 << 20
)

// errLogFull is returned by append when the record would take the log over
// its size bound.
var errLogFull = errors.New("spool is full")

// logSegment is one file of a spoolLog: records counts its complete records
// not yet acknowledged, start is where reading resumes.
type logSegment struct {
	n       uint64
	size    int64
	records int
	start   int64
}

// spoolLog is a durable FIFO of records: append-only segment files in one
// directory. append fsyncs before it returns. A record cut short by a crash
// is found by its length and skipped; a damaged one by its CRC. A segment is
// deleted once all its records are acknowledged. The read position inside a
// segment is kept in an .ack file without fsync: losing it only means
// records are replayed again, which the store deduplicates.
//
// Its methods are safe for concurrent use; one directory serves one
// spoolLog at a time.
type spoolLog struct {
	mu       sync.Mutex
	dir      string
	maxBytes int64
	segBytes int64
	table    *crc32.Table

	segs    []logSegment // oldest first; the last is the writer's when w is set
	nextSeg uint64
	size    int64
	records int
	corrupt int64

	w      *os.File
	r      *os.File // reader on segs[0]
	rOff   int64
	next   int64 // rOff after the records last returned by peekRecords
	peeked int   // how many records peekRecords returned, not yet acknowledged
}

// openSpoolLog opens, creating when needed, the log in dir. Appends always
// start a new segment, never after a tail a crash may have left torn.
func openSpoolLog(dir string, maxBytes int64) (*spoolLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	l := &spoolLog{
		dir:      dir,
		maxBytes: maxBytes,
		segBytes: min(max(maxBytes/16, 1<<20), maxSegmentBytes),
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
		if name, ok := strings.CutSuffix(e.Name(), segmentExt); ok && !e.IsDir() {
			if n, err := strconv.ParseUint(name, 10, 64); err == nil {
				nums = append(nums, n)
			}
		}
	}
	slices.Sort(nums)
	for _, n := range nums {
		seg, err := l.scan(n)
		if err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
		l.nextSeg = n + 1
		if seg.records == 0 {
			if err := l.removeSegment(n); err != nil {
				return nil, fmt.Errorf("open spool: %w", err)
			}
			continue
		}
		l.segs = append(l.segs, seg)
		l.size += seg.size
		l.records += seg.records
	}
	for _, n := range acks {
		if !slices.ContainsFunc(l.segs, func(g logSegment) bool { return g.n == n }) {
			os.Remove(l.ackPath(n)) // left by a crash between two removes
		}
	}
	return l, nil
}

func (l *spoolLog) path(n uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%016d%s", n, segmentExt))
}

func (l *spoolLog) ackPath(n uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%016d%s", n, ackExt))
}

// scan counts the complete records of segment n after its saved read
// position; it stops at a header or payload cut short. CRCs are checked when
// records are read.
func (l *spoolLog) scan(n uint64) (logSegment, error) {
	f, err := os.Open(l.path(n))
	if err != nil {
		return logSegment{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return logSegment{}, err
	}
	seg := logSegment{n: n, size: fi.Size()}
	ack := int64(-1)
	if b, err := os.ReadFile(l.ackPath(n)); err == nil {
		if off, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && off >= 0 {
			ack = off
		}
	}
	var hdr [recordHeaderSize]byte
	for off := int64(0); ; {
		if off == ack {
			// Only a record boundary is trusted as the read position.
			seg.start, seg.records = off, 0
		}
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			break
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		end := off + recordHeaderSize + size
		if size == 0 || end > seg.size {
			break
		}
		seg.records++
		off = end
	}
	return seg, nil
}

// append writes payload as one record and fsyncs it. It returns errLogFull
// when the log would grow over its bound.
func (l *spoolLog) append(payload []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(payload) == 0 {
		return errors.New("spool: empty record")
	}
	rec := int64(recordHeaderSize + len(payload))
	if len(payload) > 1<<31 || l.size+rec > l.maxBytes {
		return errLogFull
	}
	if l.w != nil {
		if last := l.segs[len(l.segs)-1]; last.size > 0 && last.size+rec > l.segBytes {
			if err := l.w.Close(); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			l.w = nil
		}
	}
	if l.w == nil {
		if err := l.create(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	seg := &l.segs[len(l.segs)-1]
	buf := make([]byte, recordHeaderSize, rec)
	binary.BigEndian.PutUint32(buf[:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:], crc32.Checksum(payload, l.table))
	buf = append(buf, payload...)
	_, err := l.w.Write(buf)
	if err == nil {
		err = l.w.Sync()
	}
	if err != nil {
		// Cut off what was written; if that fails too, later appends go
		// to a new segment and readers skip the torn tail.
		if terr := l.w.Truncate(seg.size); terr != nil {
			l.w.Close()
			l.w = nil
		}
		return fmt.Errorf("spool: %w", err)
	}
	seg.size += rec
	seg.records++
	l.size += rec
	l.records++
	return nil
}

// create starts a new segment for appends.
func (l *spoolLog) create() error {
	n := l.nextSeg
	f, err := os.OpenFile(l.path(n), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// The new name must survive a crash as well as the records in it.
	if err := syncDir(l.dir); err != nil {
		f.Close()
		os.Remove(l.path(n))
		return err
	}
	l.nextSeg++
	l.w = f
	l.segs = append(l.segs, logSegment{n: n})
	return nil
}

// peekRecords returns the oldest unacknowledged records, in order: at
// least one when there is any, at most maxRecords, and more than one only
// while their payloads fit in maxBytes. They come from one segment. Damaged
// records at the head are skipped and counted; a damaged one after the
// first ends the run, to be skipped by the next call.
func (l *spoolLog) peekRecords(maxRecords int, maxBytes int64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.peeked = 0
	var (
		out  [][]byte
		size int64
		err  error
	)
	for l.records > 0 && len(out) < maxRecords {
		seg := &l.segs[0]
		if l.r == nil {
			if l.r, err = os.Open(l.path(seg.n)); err != nil {
				return nil, fmt.Errorf("spool: %w", err)
			}
			l.rOff = seg.start
		}
		off := l.rOff
		if len(out) > 0 {
			off = l.next
		}
		var hdr [recordHeaderSize]byte
		if _, err := l.r.ReadAt(hdr[:], off); err != nil {
			if !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("spool: %w", err)
			}
			if len(out) > 0 {
				break
			}
			if err := l.dropHead(); err != nil {
				return nil, err
			}
			continue
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		if n == 0 || off+recordHeaderSize+n > seg.size {
			if len(out) > 0 {
				break
			}
			if err := l.dropHead(); err != nil { // a torn tail
				return nil, err
			}
			continue
		}
		if len(out) > 0 && size+n > maxBytes {
			break
		}
		payload := make([]byte, n)
		if _, err := l.r.ReadAt(payload, off+recordHeaderSize); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		end := off + recordHeaderSize + n
		if crc32.Checksum(payload, l.table) != binary.BigEndian.Uint32(hdr[4:]) {
			if len(out) > 0 {
				break
			}
			l.corrupt++
			l.rOff = end
			seg.records--
			l.records--
			if seg.records == 0 {
				if err := l.dropHead(); err != nil {
					return nil, err
				}
			}
			continue
		}
		out = append(out, payload)
		size += n
		l.next = end
		if len(out) == seg.records {
			break // the rest is in the next segment
		}
	}
	l.peeked = len(out)
	return out, nil
}

// ack removes the records last returned by peekRecords, deleting their
// segment when they were its last.
func (l *spoolLog) ack() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peeked == 0 {
		return nil
	}
	l.rOff = l.next
	l.segs[0].records -= l.peeked
	l.records -= l.peeked
	l.peeked = 0
	if l.segs[0].records == 0 {
		return l.dropHead()
	}
	return os.WriteFile(l.ackPath(l.segs[0].n), strconv.AppendInt(nil, l.rOff, 10), 0o600)
}

// dropHead deletes the oldest segment, and stops appending to it if it was
// the writer's.
func (l *spoolLog) dropHead() error {
	seg := l.segs[0]
	if l.r != nil {
		l.r.Close()
		l.r = nil
	}
	if l.w != nil && len(l.segs) == 1 {
		l.w.Close()
		l.w = nil
	}
	l.segs = l.segs[1:]
	l.size -= seg.size
	l.records -= seg.records
	l.rOff, l.peeked = 0, 0
	if err := l.removeSegment(seg.n); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (l *spoolLog) removeSegment(n uint64) error {
	if err := os.Remove(l.path(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(l.ackPath(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// state returns the records waiting, the size of the log's files and the
// damaged records skipped so far.
func (l *spoolLog) state() (records int, size, corrupt int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records, l.size, l.corrupt
}

// pending returns how many records wait to be read.
func (l *spoolLog) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records
}

// close closes the open files; the content stays for the next open.
func (l *spoolLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.r != nil {
		err = l.r.Close()
		l.r = nil
	}
	if l.w != nil {
		err = errors.Join(err, l.w.Close())
		l.w = nil
	}
	return err
}

// syncDir fsyncs a directory so that names created in it are durable.
// Windows cannot open directories for syncing and does not need to.
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
