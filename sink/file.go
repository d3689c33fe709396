package sink

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail/export"
)

// file appends each batch to a file and fsyncs it before Deliver returns,
// so the checkpoint never moves past an event that is not on disk. Past
// rotate.max_bytes or rotate.max_age the file is renamed to
// NAME-<UTC time>.EXT (gzipped when rotate.gzip) and a new one started:
// Filebeat, Vector and Fluent Bit follow such files by name.
type file struct {
	cfg    Config
	f      *os.File
	size   int64
	opened time.Time
	now    func() time.Time
}

func newFile(c Config) (*file, error) {
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o750); err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	return &file{cfg: c, now: time.Now}, nil
}

func (s *file) open() error {
	f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size, s.opened = f, fi.Size(), s.now()
	if s.size > 0 {
		s.opened = fi.ModTime() // an older file: its age counts from its last write at least
	}
	if s.size == 0 && s.cfg.Format == export.CSV {
		n, err := f.Write(CSVHeaderLine())
		s.size += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *file) Deliver(ctx context.Context, b *Batch) (*Result, error) {
	if s.f == nil {
		if err := s.open(); err != nil {
			return nil, &Unavailable{Err: fmt.Errorf("open %s: %w", s.cfg.Path, err)}
		}
	}
	n, err := s.f.Write(b.Body())
	s.size += int64(n)
	if err != nil {
		return nil, s.broken(fmt.Errorf("write %s: %w", s.cfg.Path, err))
	}
	if err := s.f.Sync(); err != nil {
		return nil, s.broken(fmt.Errorf("fsync %s: %w", s.cfg.Path, err))
	}
	if s.size >= int64(s.cfg.Rotate.MaxBytes) || s.now().Sub(s.opened) >= time.Duration(s.cfg.Rotate.MaxAge) {
		if err := s.rotate(); err != nil {
			// The batch is on disk; the next one retries the rotation.
			return nil, nil
		}
	}
	return nil, nil
}

// broken closes the file after a failed write: the retry reopens it and
// appends the whole batch again (at least once).
func (s *file) broken(err error) error {
	s.f.Close()
	s.f = nil
	return &Unavailable{Err: err}
}

// rotate closes the file and moves it aside.
func (s *file) rotate() error {
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	ext := filepath.Ext(s.cfg.Path)
	base := strings.TrimSuffix(s.cfg.Path, ext)
	to := fmt.Sprintf("%s-%s%s", base, s.now().UTC().Format("20060102T150405.000000000Z"), ext)
	if err := os.Rename(s.cfg.Path, to); err != nil {
		return err
	}
	if s.cfg.Rotate.Gzip {
		return gzipFile(to)
	}
	return nil
}

// gzipFile compresses path to path.gz and removes path once the
// compressed copy is on disk.
func gzipFile(path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(path)
}

func (s *file) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
