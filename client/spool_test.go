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

func TestSpoolOrderAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenSpool(t, dir, 1<<20) // segments of 128 KiB
	const n = 60
	for i := range n {
		if err := s.append(record(i, 100+i*300)); err != nil {
			t.Fatalf("append(%d): %v", i, err)
		}
	}
	if got := len(segments(t, dir)); got < 2 {
		t.Fatalf("%d segments, want several (records should roll over)", got)
	}
	if got := s.pending(); got != n {
		t.Fatalf("pending() = %d, want %d", got, n)
	}
	// Read 20, and peek the 21st without acknowledging it.
	for i := range 20 {
		p, ok, err := s.peekRecord()
		if err != nil || !ok || !bytes.Equal(p, record(i, 100+i*300)) {
			t.Fatalf("record %d = %.10q, %v, %v; want %.10q", i, p, ok, err, record(i, 100+i*300))
		}
		if err := s.ack(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.peekRecord(); err != nil {
		t.Fatal(err)
	}
	s.close()

	// A new process reads on from the first unacknowledged record: the
	// one peeked but not acknowledged comes back, the acknowledged ones
	// do not.
	s2 := mustOpenSpool(t, dir, 1<<20)
	if got := s2.pending(); got != n-20 {
		t.Errorf("reopened spool: pending() = %d, want %d", got, n-20)
	}
	got := readAll(t, s2)
	if len(got) != n-20 {
		t.Fatalf("reopened spool returned %d records, want %d", len(got), n-20)
	}
	first := 20
	for k, p := range got {
		if want := record(first+k, 100+(first+k)*300); !bytes.Equal(p, want) {
			t.Fatalf("after reopen, record %d = %.10q, want %.10q", k, p, want)
		}
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "*")); len(got) != 0 {
		t.Errorf("files left after acknowledging everything: %v", got)
	}
	if got := s2.bytes(); got != 0 {
		t.Errorf("bytes() = %d after acknowledging everything, want 0", got)
	}
}

func TestSpoolDamagedRecords(t *testing.T) {
	tests := []struct {
		name        string
		damage      func(b []byte) []byte // the last segment's bytes
		want        []int                 // indexes of the records read back
		wantCorrupt int64
	}{
		{
			name:   "tail cut inside the header",
			damage: func(b []byte) []byte { return b[:len(b)-len(record(2, 50))-5] },
			want:   []int{0, 1},
		},
		{
			name:   "tail cut inside the payload",
			damage: func(b []byte) []byte { return b[:len(b)-10] },
			want:   []int{0, 1},
		},
		{
			name:   "tail of zeros after a crash",
			damage: func(b []byte) []byte { return append(b, make([]byte, 40)...) },
			want:   []int{0, 1, 2},
		},
		{
			name: "payload bit flipped",
			damage: func(b []byte) []byte {
				off := recordHeaderSize + len(record(0, 50)) + recordHeaderSize + 3 // inside record 1
				b[off] ^= 0x40
				return b
			},
			want:        []int{0, 2},
			wantCorrupt: 1,
		},
		{
			name: "checksum bit flipped",
			damage: func(b []byte) []byte {
				b[5] ^= 1 // record 0's CRC
				return b
			},
			want:        []int{1, 2},
			wantCorrupt: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openSpool(dir, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := s.append(record(i, 50)); err != nil {
					t.Fatal(err)
				}
			}
			s.close()
			segs := segments(t, dir)
			if len(segs) != 1 {
				t.Fatalf("segments = %v, want one", segs)
			}
			b, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(segs[0], tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}

			s2 := mustOpenSpool(t, dir, 1<<20)
			// A new record after the damage must still be read.
			if err := s2.append(record(9, 50)); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, s2)
			want := append(append([]int(nil), tt.want...), 9)
			if len(got) != len(want) {
				t.Fatalf("read %d records %q, want %d (records %v)", len(got), got, len(want), want)
			}
			for k, i := range want {
				if !bytes.Equal(got[k], record(i, 50)) {
					t.Errorf("record %d = %q, want record %d", k, got[k], i)
				}
			}
			if c := s2.corrupted(); c != tt.wantCorrupt {
				t.Errorf("corrupted() = %d, want %d", c, tt.wantCorrupt)
			}
			if segs := segments(t, dir); len(segs) != 0 {
				t.Errorf("segments left after reading everything: %v", segs)
			}
		})
	}
}

func TestSpoolSizeBound(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 64 << 10
	s := mustOpenSpool(t, dir, maxBytes)
	p := record(0, 1000)
	n := 0
	for ; n < 1000; n++ {
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
	if got := s.bytes(); got > maxBytes {
		t.Errorf("bytes() = %d, over the bound %d", got, maxBytes)
	}
	var onDisk int64
	for _, f := range segments(t, dir) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		onDisk += fi.Size()
	}
	if onDisk != s.bytes() {
		t.Errorf("segment files hold %d bytes, bytes() = %d", onDisk, s.bytes())
	}
	// Replaying frees room.
	if got := len(readAll(t, s)); got != n {
		t.Fatalf("read %d records, want %d", got, n)
	}
	if err := s.append(p); err != nil {
		t.Errorf("append after draining: %v", err)
	}
}

func TestSpoolIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"producer.json", "notes.seg.bak", "x" + segmentExt} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := mustOpenSpool(t, dir, 1<<20)
	if got := s.pending(); got != 0 {
		t.Errorf("pending() = %d in a directory without segments, want 0", got)
	}
	if err := s.append([]byte("[]")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s); len(got) != 1 || string(got[0]) != "[]" {
		t.Errorf("readAll = %q, want [\"[]\"]", got)
	}
}

func TestSpoolAckFile(t *testing.T) {
	tests := []struct {
		name      string
		ack       string // the head segment's .ack content after 2 acks
		wantFirst int    // first record read after reopening
	}{
		{"intact", "", 2},
		{"not a record boundary", "13", 0},
		{"past the end", "999999", 0},
		{"garbage", "x", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openSpool(dir, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if err := s.append(record(i, 40)); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if _, _, err := s.peekRecord(); err != nil {
					t.Fatal(err)
				}
				if err := s.ack(); err != nil {
					t.Fatal(err)
				}
			}
			s.close()
			acks, _ := filepath.Glob(filepath.Join(dir, "*"+ackExt))
			if len(acks) != 1 {
				t.Fatalf(".ack files = %v, want one", acks)
			}
			if tt.ack != "" {
				if err := os.WriteFile(acks[0], []byte(tt.ack), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// An .ack file whose segment is gone is removed.
			orphan := filepath.Join(dir, "0000000000000042"+ackExt)
			if err := os.WriteFile(orphan, []byte("8"), 0o600); err != nil {
				t.Fatal(err)
			}
			s2 := mustOpenSpool(t, dir, 1<<20)
			got := readAll(t, s2)
			if len(got) != 5-tt.wantFirst {
				t.Fatalf("read %d records after reopening, want %d", len(got), 5-tt.wantFirst)
			}
			for k, p := range got {
				if want := record(tt.wantFirst+k, 40); !bytes.Equal(p, want) {
					t.Errorf("record %d = %q, want %q", k, p, want)
				}
			}
			if _, err := os.Stat(orphan); !os.IsNotExist(err) {
				t.Errorf("orphaned .ack file still there (%v)", err)
			}
		})
	}
}
