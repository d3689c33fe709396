package client

import "github.com/agenttrail/agenttrail/internal/spoollog"

// The spool's on-disk format is spoollog's, shared with the server's spool.
const (
	recordHeaderSize = spoollog.HeaderSize
	segmentExt       = spoollog.SegmentExt
	ackExt           = spoollog.AckExt
)

// errSpoolFull is returned by append when the record would take the spool
// over its size bound.
var errSpoolFull = spoollog.ErrFull

// spool is the Recorder's durable FIFO of batches on disk, one JSON batch a
// record: a spoollog.Log read one record at a time, because each replayed
// batch is one request the server must acknowledge. Records are fsynced
// before append returns; damaged and torn ones are skipped; a batch read
// twice after a crash is deduplicated by the server.
//
// The methods are safe for concurrent use. A directory may be used by one
// spool at a time.
type spool struct {
	log *spoollog.Log
}

// openSpool opens (creating it when needed) the spool in dir. Segments are
// an eighth of maxBytes, within 64 KiB to 16 MiB: an agent's spool is
// small, and small segments give disk back early in a replay.
func openSpool(dir string, maxBytes int64) (*spool, error) {
	l, err := spoollog.Open(dir, spoollog.Options{
		MaxBytes:     maxBytes,
		SegmentBytes: min(max(maxBytes/8, 64<<10), 16<<20),
	})
	if err != nil {
		return nil, err
	}
	return &spool{log: l}, nil
}

// append writes payload as one record and fsyncs it. It returns errSpoolFull
// when the spool would grow over its bound.
func (s *spool) append(payload []byte) error { return s.log.Append(payload) }

// peekRecord returns the oldest unacknowledged record, or ok false when there
// is none. Damaged records on the way are skipped and counted.
func (s *spool) peekRecord() (payload []byte, ok bool, err error) {
	recs, err := s.log.Peek(1, 0)
	if err != nil || len(recs) == 0 {
		return nil, false, err
	}
	return recs[0], true, nil
}

// ack removes the record last returned by peekRecord.
func (s *spool) ack() error { return s.log.Ack() }

// pending returns how many records wait to be replayed.
func (s *spool) pending() int { return s.log.Stats().Records }

// bytes returns the size of the spool's files.
func (s *spool) bytes() int64 { return s.log.Stats().Bytes }

// corrupted returns how many damaged records were skipped.
func (s *spool) corrupted() int64 { return s.log.Stats().Corrupt }

// close closes the open files; the spool's content stays for the next open.
func (s *spool) close() error { return s.log.Close() }

// syncDir fsyncs a directory so that names created or renamed in it are
// durable (the producer state is renamed into place).
func syncDir(dir string) error { return spoollog.SyncDir(dir) }
