package spoollog

import (
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestAckFile(t *testing.T) {
	tests := []struct {
		name      string
		ack       string // the head segment's .ack content after 2 acks
		wantFirst int    // first record read after reopening
	}{
		{"intact", "", 2},
		{"not a record boundary", "13", 0},
		{"past the end", "999999", 0},
		{"negative", "-48", 0},
		{"garbage", "x", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
			for i := range 5 {
				mustAppend(t, l, record(i, 40))
			}
			for range 2 {
				if _, err := l.Peek(1, 0); err != nil {
					t.Fatal(err)
				}
				if err := l.Ack(); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			acks, _ := filepath.Glob(filepath.Join(dir, "*"+AckExt))
			if len(acks) != 1 {
				t.Fatalf(".ack files = %v, want one", acks)
			}
			if b, _ := os.ReadFile(acks[0]); string(b) != strconv.Itoa(2*(HeaderSize+40)) {
				t.Errorf(".ack file holds %q, want the offset of record 2", b)
			}
			if tt.ack != "" {
				if err := os.WriteFile(acks[0], []byte(tt.ack), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// An .ack file whose segment is gone is removed.
			orphan := filepath.Join(dir, "0000000000000042"+AckExt)
			if err := os.WriteFile(orphan, []byte("8"), 0o600); err != nil {
				t.Fatal(err)
			}
			l2 := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
			if got := l2.Stats().Records; got != 5-tt.wantFirst {
				t.Errorf("reopened: Stats().Records = %d, want %d", got, 5-tt.wantFirst)
			}
			got := readAll(t, l2)
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

func TestFullyAcknowledgedSegmentRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	for i := range 3 {
		mustAppend(t, l, record(i, 40))
	}
	l.Close()
	// A crash after saving the read position at the end, before the
	// segment was deleted.
	segs := segments(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments = %v, want one", segs)
	}
	ack := strings.TrimSuffix(segs[0], SegmentExt) + AckExt
	if err := os.WriteFile(ack, []byte(strconv.Itoa(3*(HeaderSize+40))), 0o600); err != nil {
		t.Fatal(err)
	}
	l2 := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	if st := l2.Stats(); st != (Stats{}) {
		t.Errorf("Stats() = %+v, want an empty log", st)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
}

func TestPeekBounds(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: 10 * (HeaderSize + 100)})
	for i := range 25 { // segments of 10, 10 and 5 records
		mustAppend(t, l, record(i, 100))
	}
	next := 0
	check := func(maxRecords int, maxBytes int64, want int) {
		t.Helper()
		recs, err := l.Peek(maxRecords, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != want {
			t.Fatalf("Peek(%d, %d) at record %d returned %d records, want %d", maxRecords, maxBytes, next, len(recs), want)
		}
		for k, p := range recs {
			if !bytes.Equal(p, record(next+k, 100)) {
				t.Fatalf("Peek(%d, %d) record %d = %.8q, want record %d", maxRecords, maxBytes, k, p, next+k)
			}
		}
		if err := l.Ack(); err != nil {
			t.Fatal(err)
		}
		next += want
	}
	check(3, 1<<20, 3)   // by count
	check(10, 250, 2)    // by bytes: two payloads of 100 fit in 250
	check(10, 50, 1)     // one record even when it alone is over maxBytes
	check(100, 1<<20, 4) // the rest of the first segment, not beyond
	check(100, 1<<20, 10)
	// Peeking again without Ack returns the same records.
	first, _ := l.Peek(2, 1<<20)
	again, _ := l.Peek(3, 1<<20)
	if len(first) != 2 || len(again) != 3 || !bytes.Equal(first[0], again[0]) {
		t.Fatalf("repeated Peek returned %d then %d records, want 2 then 3 from the same start", len(first), len(again))
	}
	check(5, 1<<20, 5)
	if got := l.Stats().Records; got != 0 {
		t.Errorf("Stats().Records = %d after reading all, want 0", got)
	}
	if err := l.Ack(); err != nil {
		t.Errorf("Ack with nothing peeked = %v, want nil", err)
	}
}

func TestPeekStopsBeforeDamage(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	for i := range 4 {
		mustAppend(t, l, record(i, 30))
	}
	l.Close()
	seg := segments(t, dir)[0]
	b, _ := os.ReadFile(seg)
	b[2*(HeaderSize+30)+HeaderSize] ^= 1 // record 2's payload
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	l2 := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	// The damaged record ends the run; the next Peek skips it.
	var runs []int
	for {
		recs, err := l2.Peek(10, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		runs = append(runs, len(recs))
		if err := l2.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if len(runs) != 2 || runs[0] != 2 || runs[1] != 1 {
		t.Errorf("Peek runs = %v, want [2 1]", runs)
	}
	if c := l2.Stats().Corrupt; c != 1 {
		t.Errorf("Stats().Corrupt = %d, want 1", c)
	}
}

// The SDK embeds this package and promises agents no dependency beyond the
// standard library.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			n++
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s, outside the standard library", name, path)
			}
		}
	}
	if n == 0 {
		t.Error("found no imports; the check looked at no files")
	}
}
