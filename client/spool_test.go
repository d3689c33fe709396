package client

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// record returns a distinguishable payload of about n bytes.
func record(i, n int) []byte {
	p := fmt.Sprintf("[%d]", i)
	return []byte(p + strings.Repeat(" ", max(0, n-len(p))))
}

// readAll reads and acknowledges every record left in s.
func readAll(t *testing.T, s *spool) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		p, ok, err := s.peekRecord()
		if err != nil {
			t.Fatalf("peekRecord: %v", err)
		}
		if !ok {
			return out
		}
		out = append(out, p)
		if err := s.ack(); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustOpenSpool(t *testing.T, dir string, maxBytes int64) *spool {
	t.Helper()
	s, err := openSpool(dir, maxBytes)
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

// TestSpoolSegmentsAndReopen checks the Recorder's segment size (an eighth
// of the bound) and that a reopened spool resumes after the batches the
// server acknowledged. Order across segments is tested with the log itself.
func TestSpoolSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenSpool(t, dir, 1<<20)
	const n, size = 40, 10 << 10
	for i := range n {
		if err := s.append(record(i, size)); err != nil {
			t.Fatalf("append(%d): %v", i, err)
		}
	}
	// 12 records of 10 KiB and a header fit in a 128 KiB segment.
	segs := segments(t, dir)
	if len(segs) != 4 {
		t.Errorf("%d segments, want 4 of at most 128 KiB", len(segs))
	}
	for _, f := range segs {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 128<<10 {
			t.Errorf("segment %s: %v, %v; want at most 128 KiB", f, fi.Size(), err)
		}
	}
	for i := range 15 {
		p, ok, err := s.peekRecord()
		if err != nil || !ok || !bytes.Equal(p, record(i, size)) {
			t.Fatalf("peekRecord() = %.8q, %v, %v; want record %d", p, ok, err, i)
		}
		if err := s.ack(); err != nil {
			t.Fatal(err)
		}
	}
	s.close()

	s2 := mustOpenSpool(t, dir, 1<<20)
	got := readAll(t, s2)
	if len(got) != n-15 || !bytes.Equal(got[0], record(15, size)) || !bytes.Equal(got[len(got)-1], record(n-1, size)) {
		t.Fatalf("reopened spool returned %d records, want %d: records 15 to %d", len(got), n-15, n-1)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("files left after acknowledging everything: %v", left)
	}
}

// TestSpoolFullAndCorrupt checks what the Recorder reads from the spool:
// errSpoolFull itself (not wrapped) at the bound, and the counts behind
// RecorderStats. Damage, torn tails and read positions are tested with the
// log itself, in internal/spoollog.
func TestSpoolFullAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 16 << 10
	s := mustOpenSpool(t, dir, maxBytes)
	p := record(0, 1000)
	n := 0
	for ; n < 100; n++ {
		err := s.append(p)
		if err == errSpoolFull {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := maxBytes / (len(p) + recordHeaderSize); n != want {
		t.Errorf("appended %d records before errSpoolFull, want %d", n, want)
	}
	if got, want := s.bytes(), int64(n*(len(p)+recordHeaderSize)); got != want {
		t.Errorf("bytes() = %d, want %d", got, want)
	}
	s.close()

	seg := segments(t, dir)[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[recordHeaderSize+1] ^= 0x20 // record 0's payload
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpenSpool(t, dir, maxBytes)
	if got := s2.pending(); got != n {
		t.Errorf("reopened: pending() = %d, want %d", got, n)
	}
	if got := len(readAll(t, s2)); got != n-1 {
		t.Errorf("read %d records, want %d (all but the damaged one)", got, n-1)
	}
	if got := s2.corrupted(); got != 1 {
		t.Errorf("corrupted() = %d, want 1", got)
	}
	if got := s2.bytes(); got != 0 {
		t.Errorf("bytes() = %d after reading everything, want 0", got)
	}
}
