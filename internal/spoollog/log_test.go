package spoollog

import (
	"bytes"
	"errors"
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

func mustOpen(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(t *testing.T, l *Log, p []byte) {
	t.Helper()
	if err := l.Append(p); err != nil {
		t.Fatalf("Append(%.10q): %v", p, err)
	}
}

// readAll reads and acknowledges every record left in l, one at a time.
func readAll(t *testing.T, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		recs, err := l.Peek(1, 0)
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		if len(recs) == 0 {
			return out
		}
		if len(recs) != 1 {
			t.Fatalf("Peek(1, 0) returned %d records", len(recs))
		}
		out = append(out, recs[0])
		if err := l.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+SegmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOrderAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 1 << 20, SegmentBytes: 128 << 10}
	l := mustOpen(t, dir, opts)
	const n = 60
	for i := range n {
		mustAppend(t, l, record(i, 100+i*300))
	}
	if got := len(segments(t, dir)); got < 2 {
		t.Fatalf("%d segments, want several (records should roll over)", got)
	}
	if got := l.Stats().Records; got != n {
		t.Fatalf("Stats().Records = %d, want %d", got, n)
	}
	// Read 20, and peek the 21st without acknowledging it.
	for i := range 20 {
		recs, err := l.Peek(1, 0)
		if err != nil || len(recs) != 1 || !bytes.Equal(recs[0], record(i, 100+i*300)) {
			t.Fatalf("record %d = %.10q, %v; want %.10q", i, recs, err, record(i, 100+i*300))
		}
		if err := l.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Peek(1, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// A new Log reads on from the first unacknowledged record: the one
	// peeked but not acknowledged comes back, the acknowledged ones do not.
	l2 := mustOpen(t, dir, opts)
	if got := l2.Stats().Records; got != n-20 {
		t.Errorf("reopened: Stats().Records = %d, want %d", got, n-20)
	}
	// An append after reopening goes to a new segment and comes last.
	mustAppend(t, l2, record(n, 10))
	got := readAll(t, l2)
	if len(got) != n-20+1 {
		t.Fatalf("reopened log returned %d records, want %d", len(got), n-20+1)
	}
	for k, p := range got[:n-20] {
		if want := record(20+k, 100+(20+k)*300); !bytes.Equal(p, want) {
			t.Fatalf("after reopen, record %d = %.10q, want %.10q", k, p, want)
		}
	}
	if want := record(n, 10); !bytes.Equal(got[n-20], want) {
		t.Errorf("last record = %q, want %q", got[n-20], want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("files left after acknowledging everything: %v", left)
	}
	if st := l2.Stats(); st != (Stats{}) {
		t.Errorf("Stats() = %+v after acknowledging everything, want zero", st)
	}
}

func TestDamagedRecords(t *testing.T) {
	tests := []struct {
		name        string
		damage      func(b []byte) []byte // the segment's bytes
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
			name: "length grown past the end",
			damage: func(b []byte) []byte {
				b[HeaderSize+len(record(0, 50))+2] = 0x7f // record 1's length
				return b
			},
			want: []int{0},
		},
		{
			name: "payload bit flipped",
			damage: func(b []byte) []byte {
				b[HeaderSize+len(record(0, 50))+HeaderSize+3] ^= 0x40 // inside record 1
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
		{
			name: "every checksum flipped",
			damage: func(b []byte) []byte {
				for i := range 3 {
					b[i*(HeaderSize+len(record(0, 50)))+4] ^= 0x80
				}
				return b
			},
			want:        nil,
			wantCorrupt: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
			for i := range 3 {
				mustAppend(t, l, record(i, 50))
			}
			l.Close()
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

			l2 := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
			// A record appended after the damage must still be read.
			mustAppend(t, l2, record(9, 50))
			got := readAll(t, l2)
			want := append(append([]int(nil), tt.want...), 9)
			if len(got) != len(want) {
				t.Fatalf("read %d records %q, want %d (records %v)", len(got), got, len(want), want)
			}
			for k, i := range want {
				if !bytes.Equal(got[k], record(i, 50)) {
					t.Errorf("record %d = %q, want record %d", k, got[k], i)
				}
			}
			if c := l2.Stats().Corrupt; c != tt.wantCorrupt {
				t.Errorf("Stats().Corrupt = %d, want %d", c, tt.wantCorrupt)
			}
			if segs := segments(t, dir); len(segs) != 0 {
				t.Errorf("segments left after reading everything: %v", segs)
			}
		})
	}
}

func TestSizeBound(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 64 << 10
	l := mustOpen(t, dir, Options{MaxBytes: maxBytes, SegmentBytes: 16 << 10})
	p := record(0, 1000)
	n := 0
	for ; n < 1000; n++ {
		err := l.Append(p)
		if err == ErrFull {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := maxBytes / (len(p) + HeaderSize); n != want {
		t.Errorf("appended %d records before ErrFull, want %d", n, want)
	}
	if got := l.Stats().Bytes; got > maxBytes {
		t.Errorf("Stats().Bytes = %d, over the bound %d", got, maxBytes)
	}
	var onDisk int64
	segs := segments(t, dir)
	for _, f := range segs {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 16<<10 {
			t.Errorf("segment %s holds %d bytes, over SegmentBytes", f, fi.Size())
		}
		onDisk += fi.Size()
	}
	if len(segs) < 4 {
		t.Errorf("%d segments, want at least 4 of 16 KiB", len(segs))
	}
	if onDisk != l.Stats().Bytes {
		t.Errorf("segment files hold %d bytes, Stats().Bytes = %d", onDisk, l.Stats().Bytes)
	}
	// Consuming frees room.
	if got := len(readAll(t, l)); got != n {
		t.Fatalf("read %d records, want %d", got, n)
	}
	if err := l.Append(p); err != nil {
		t.Errorf("Append after draining: %v", err)
	}
	// A record larger than a segment still gets one of its own.
	big := record(1, 20<<10)
	mustAppend(t, l, big)
	if got := readAll(t, l); len(got) != 2 || !bytes.Equal(got[1], big) {
		t.Errorf("read %d records after a large one, want 2 ending with it", len(got))
	}
}

func TestAppendRefuses(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{MaxBytes: 100})
	if err := l.Append(nil); err == nil || errors.Is(err, ErrFull) {
		t.Errorf("Append(nil) = %v, want an empty-record error", err)
	}
	if err := l.Append(make([]byte, 100)); err != ErrFull {
		t.Errorf("Append(100 bytes) with MaxBytes 100 = %v, want ErrFull (the header counts)", err)
	}
	if err := l.Append(make([]byte, 100-HeaderSize)); err != nil {
		t.Errorf("Append(%d bytes) = %v, want it to fit exactly", 100-HeaderSize, err)
	}
	if _, err := Open(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "MaxBytes") {
		t.Errorf("Open with no MaxBytes = %v, want an error naming MaxBytes", err)
	}
}

func TestIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"producer.json", "notes.seg.bak", "x" + SegmentExt, "y" + AckExt} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	if got := l.Stats().Records; got != 0 {
		t.Errorf("Stats().Records = %d in a directory without segments, want 0", got)
	}
	mustAppend(t, l, []byte("[]"))
	if got := readAll(t, l); len(got) != 1 || string(got[0]) != "[]" {
		t.Errorf("readAll = %q, want [\"[]\"]", got)
	}
	for _, name := range []string{"producer.json", "notes.seg.bak", "x" + SegmentExt, "y" + AckExt} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v, want it left alone", name, err)
		}
	}
}
