package spoollog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
)

// Peek returns the oldest unacknowledged records, in order, without
// removing them: at least one when there is any, at most maxRecords, and
// more than one only while their payloads together fit in maxBytes. They
// come from one segment. Damaged records at the head are skipped and
// counted; a damaged one after the first ends the run, to be skipped by the
// next call. A torn tail ends its segment. It returns no records and a nil
// error when the log is empty.
//
// Peeking again without Ack returns the same records (more or fewer, by the
// new bounds): only the last Peek is acknowledged.
func (l *Log) Peek(maxRecords int, maxBytes int64) ([][]byte, error) {
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
		var hdr [HeaderSize]byte
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
		if n == 0 || off+HeaderSize+n > seg.size {
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
		if _, err := l.r.ReadAt(payload, off+HeaderSize); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		end := off + HeaderSize + n
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

// Ack removes the records the last Peek returned, deleting their segment
// when they were its last; it does nothing when there are none. The new
// read position is saved without fsync (see the package doc).
func (l *Log) Ack() error {
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
	if err := os.WriteFile(l.ackPath(l.segs[0].n), strconv.AppendInt(nil, l.rOff, 10), 0o600); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// dropHead deletes the oldest segment, and stops appending to it if it was
// the writer's.
func (l *Log) dropHead() error {
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

// removeSegment deletes segment n and its read position; either may be
// gone already.
func (l *Log) removeSegment(n uint64) error {
	if err := os.Remove(l.path(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(l.ackPath(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
