// Package spoollog is a durable, bounded FIFO of records on disk: the spool
// format shared by the SDK's Recorder (client/) and the server's ingest spool
// (ingest/).
//
// A Log is a directory of append-only segment files, named by a 16-digit
// sequence number and SegmentExt. A segment is a run of records, each an
// 8-byte header — the payload's length and its CRC32C (Castagnoli), both
// big-endian uint32 — followed by the payload. Payloads are never empty, so a
// zero length marks the end of what was written (a file a crash extended with
// zeros). Every Append is fsynced before it returns. A record cut short by a
// crash is found by its length and skipped with the rest of its segment; a
// damaged one is found by its CRC, skipped and counted. Appends after an
// Open always start a new segment, never after a tail a crash may have left
// torn.
//
// Records are read in order with Peek and removed with Ack; a segment is
// deleted once all its records are acknowledged, so the log shrinks as it
// is consumed. The read position inside the oldest segment is kept next to
// it in an AckExt file, written without fsync: losing it only means records
// are read again, so consumers must tolerate duplicates (both spools replay
// to servers or stores that deduplicate by event id).
//
// It imports only the standard library, because the SDK that embeds it must
// not pull in anything else.
package spoollog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The on-disk format. Existing spools written by earlier versions of either
// spool use exactly this; change it only with a migration.
const (
	HeaderSize = 8      // bytes before each payload: length and CRC32C
	SegmentExt = ".seg" // suffix of segment files
	AckExt     = ".ack" // suffix of a segment's saved read position
)

// maxPayload bounds one record: its length must fit the header's uint32.
const maxPayload = 1 << 31

// ErrFull is returned, unwrapped, by Append when the record would take the
// log over its size bound. Acknowledging records makes room again.
var ErrFull = errors.New("spool is full")

// Options bound a Log.
type Options struct {
	// MaxBytes bounds the size of the log's segment files; it must be
	// positive. A record that would go over it is refused with ErrFull.
	MaxBytes int64
	// SegmentBytes is the size at which appends start a new segment (a
	// segment always takes at least one record, however large). Smaller
	// segments free disk sooner while the log is consumed; larger ones
	// mean fewer files. Zero means MaxBytes/16, within 64 KiB to 64 MiB.
	SegmentBytes int64
}

// segment is one file of a Log: records counts its complete records not yet
// acknowledged; size is the file's size in bytes; start is where reading
// resumes (past the records an earlier process acknowledged).
type segment struct {
	n       uint64
	size    int64
	records int
	start   int64
}

// Log is an open spool directory. Build it with Open; the zero value is not
// usable. Its methods are safe for concurrent use, though Peek and Ack are
// meant for one consumer: Ack removes what the last Peek returned. A
// directory may be used by one Log at a time, in one process; Close it
// before another Open of the same directory.
type Log struct {
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

	w      *os.File // the segment appends go to; nil until needed
	r      *os.File // reader on segs[0]
	rOff   int64
	next   int64 // rOff after the records last returned by Peek
	peeked int   // how many records Peek returned, not yet acknowledged
}

// Open opens the log in dir, creating the directory (mode 0700) when
// needed. It counts the records earlier processes left, resuming after
// their acknowledged ones, and removes segments with nothing left to read.
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxBytes <= 0 {
		return nil, fmt.Errorf("open spool: MaxBytes %d is not positive", opts.MaxBytes)
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/16, 64<<10), 64<<20)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	l := &Log{
		dir:      dir,
		maxBytes: opts.MaxBytes,
		segBytes: opts.SegmentBytes,
		table:    crc32.MakeTable(crc32.Castagnoli),
		nextSeg:  1,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	var nums, acks []uint64
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), AckExt); ok {
			if n, err := strconv.ParseUint(name, 10, 64); err == nil {
				acks = append(acks, n)
			}
			continue
		}
		if name, ok := strings.CutSuffix(e.Name(), SegmentExt); ok && !e.IsDir() {
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
		if !slices.ContainsFunc(l.segs, func(g segment) bool { return g.n == n }) {
			os.Remove(l.ackPath(n)) // left by a crash between two removes
		}
	}
	return l, nil
}

func (l *Log) path(n uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%016d%s", n, SegmentExt))
}

func (l *Log) ackPath(n uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%016d%s", n, AckExt))
}

// scan counts the complete records of segment n after its saved read
// position; it stops at a header or payload cut short. CRCs are checked when
// records are read.
func (l *Log) scan(n uint64) (segment, error) {
	f, err := os.Open(l.path(n))
	if err != nil {
		return segment{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segment{}, err
	}
	seg := segment{n: n, size: fi.Size()}
	ack := int64(-1)
	if b, err := os.ReadFile(l.ackPath(n)); err == nil {
		if off, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && off >= 0 {
			ack = off
		}
	}
	var hdr [HeaderSize]byte
	for off := int64(0); ; {
		if off == ack {
			// Only a record boundary is trusted as the read position: the
			// ack file is written without care for crashes.
			seg.start, seg.records = off, 0
		}
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			break
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		end := off + HeaderSize + size
		if size == 0 || end > seg.size {
			break
		}
		seg.records++
		off = end
	}
	return seg, nil
}

// Append writes payload as one record and fsyncs it; once it returns nil
// the record survives a crash. It returns ErrFull when the log would grow
// over its bound, and an error for an empty payload. After a failed write
// the partial record is cut off, or, when that fails too, left as a torn
// tail that readers skip.
func (l *Log) Append(payload []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(payload) == 0 {
		return errors.New("spool: empty record")
	}
	rec := int64(HeaderSize + len(payload))
	if len(payload) > maxPayload || l.size+rec > l.maxBytes {
		return ErrFull
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
	// One write per record: header and payload land together or the
	// length check finds the tear.
	buf := make([]byte, HeaderSize, rec)
	binary.BigEndian.PutUint32(buf[:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:], crc32.Checksum(payload, l.table))
	buf = append(buf, payload...)
	_, err := l.w.Write(buf)
	if err == nil {
		err = l.w.Sync()
	}
	if err != nil {
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
func (l *Log) create() error {
	n := l.nextSeg
	f, err := os.OpenFile(l.path(n), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// The new name must survive a crash as well as the records in it.
	if err := SyncDir(l.dir); err != nil {
		f.Close()
		os.Remove(l.path(n))
		return err
	}
	l.nextSeg++
	l.w = f
	l.segs = append(l.segs, segment{n: n})
	return nil
}

// Stats is what a Log holds.
type Stats struct {
	Records int   // records waiting to be read and acknowledged
	Bytes   int64 // size of the segment files
	Corrupt int64 // damaged records skipped since Open
}

// Stats returns the log's current counts.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Records: l.records, Bytes: l.size, Corrupt: l.corrupt}
}

// Close closes the open files; the content stays for the next Open. The
// Log must not be used after Close.
func (l *Log) Close() error {
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

// SyncDir fsyncs a directory so that names created or renamed in it are
// durable. Windows cannot open directories for syncing and does not need to.
func SyncDir(dir string) error {
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

// ErrLocked is the error of Lock when another holder has the directory.
var ErrLocked = errors.New("in use by another process or recorder")
