package sqlite

import (
	"fmt"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// rawConn is a connection through SQLite's C API (modernc.org/sqlite/lib,
// the library the database/sql driver itself calls), for the one hot
// write path, Append. Per row, database/sql and the driver cost more than
// the insert: converting every argument to a driver.Value, copying every
// string into a fresh C allocation and freeing it after the step, and
// taking the connection's mutex around each call. Here a row's strings are
// copied into one buffer the connection reuses and bound without a copy
// (SQLITE_STATIC), and the connection is opened without a mutex
// (SQLITE_OPEN_NOMUTEX): Store.mu already serializes every use of it.
//
// The invariant that makes SQLITE_STATIC safe: the buffer is shared by every
// statement of the connection and reserve may free it, so a statement binds
// all of its text and blob parameters anew before each step, and no
// statement is left on a row while another one reserves. Every statement
// on the writer does both; a new one must too.
//
// A rawConn is not safe for concurrent use.
type rawConn struct {
	tls *libc.TLS
	db  uintptr

	// buf holds the text and blob values bound to the statement being
	// run, from offset 0 to used; it is reused by the next row once the
	// row's step is done, and grown only between rows.
	buf      uintptr
	bufCap   int
	used     int
	bindErr  error
	pointers uintptr // 8 bytes of C memory for out-parameters
}

// rawError is a SQLite result code with its message; formatError
// translates it like the driver's errors (both have Code).
type rawError struct {
	code int
	msg  string
}

func (e *rawError) Error() string { return e.msg }

// Code returns the SQLite (extended) result code.
func (e *rawError) Code() int { return e.code }

// openRaw opens the existing database file at path for reading and
// writing and runs pragmas on it, each a PRAGMA statement's text.
func openRaw(path string, pragmas ...string) (*rawConn, error) {
	c := &rawConn{tls: libc.NewTLS()}
	c.pointers = sqlite3.Xsqlite3_malloc64(c.tls, 8)
	if c.pointers == 0 {
		c.tls.Close()
		return nil, &rawError{sqlite3.SQLITE_NOMEM, "sqlite: out of memory"}
	}
	name := c.cstring(path)
	defer sqlite3.Xsqlite3_free(c.tls, name)
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, c.pointers,
		sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_NOMUTEX|sqlite3.SQLITE_OPEN_EXRESCODE, 0)
	c.db = *(*uintptr)(cptr(c.pointers))
	if rc != sqlite3.SQLITE_OK {
		err := c.errorOf(rc)
		c.close()
		return nil, err
	}
	for _, p := range pragmas {
		if err := c.exec(p); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// close closes the connection; its statements must have been closed.
func (c *rawConn) close() {
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	if c.buf != 0 {
		sqlite3.Xsqlite3_free(c.tls, c.buf)
		c.buf, c.bufCap = 0, 0
	}
	if c.pointers != 0 {
		sqlite3.Xsqlite3_free(c.tls, c.pointers)
		c.pointers = 0
	}
	c.tls.Close()
}

// cptr turns an address of C memory (allocated by SQLite, outside the Go
// heap) into a pointer.
func cptr(p uintptr) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(nil), p) }

// cbytes is the n bytes of C memory at p.
func cbytes(p uintptr, n int) []byte { return unsafe.Slice((*byte)(cptr(p)), n) }

// cstring copies s, NUL-terminated, into a new C allocation the caller
// frees with sqlite3_free.
func (c *rawConn) cstring(s string) uintptr {
	p := sqlite3.Xsqlite3_malloc64(c.tls, uint64(len(s)+1))
	if p == 0 {
		panic("sqlite: out of memory")
	}
	b := cbytes(p, len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return p
}

func (c *rawConn) errorOf(rc int32) error {
	msg := "sqlite: " + libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 {
		if m := libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db)); m != "" {
			msg += ": " + m
		}
	}
	return &rawError{code: int(rc), msg: fmt.Sprintf("%s (%d)", msg, rc)}
}

// exec runs one statement that returns no rows.
func (c *rawConn) exec(query string) error {
	st, err := c.prepare(query)
	if err != nil {
		return err
	}
	defer st.close()
	_, err = st.exec()
	return err
}

// rawStmt is a prepared statement of a rawConn.
type rawStmt struct {
	c *rawConn
	p uintptr
}

// prepare prepares query, one statement, for repeated use.
func (c *rawConn) prepare(query string) (*rawStmt, error) {
	z := c.cstring(query)
	defer sqlite3.Xsqlite3_free(c.tls, z)
	rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, z, int32(len(query)), sqlite3.SQLITE_PREPARE_PERSISTENT, c.pointers, 0)
	if rc != sqlite3.SQLITE_OK {
		return nil, fmt.Errorf("prepare %.60q: %w", query, c.errorOf(rc))
	}
	return &rawStmt{c: c, p: *(*uintptr)(cptr(c.pointers))}, nil
}

func (s *rawStmt) close() {
	if s != nil && s.p != 0 {
		sqlite3.Xsqlite3_finalize(s.c.tls, s.p)
		s.p = 0
	}
}

// reserve makes room for n bytes of text and blob values for the next
// row, whose binding starts afresh. Call it before binding the row's
// first value.
func (s *rawStmt) reserve(n int) {
	c := s.c
	c.used = 0
	c.bindErr = nil
	if n <= c.bufCap {
		return
	}
	if c.buf != 0 {
		sqlite3.Xsqlite3_free(c.tls, c.buf)
	}
	c.bufCap = max(n, 2*c.bufCap, 4096)
	c.buf = sqlite3.Xsqlite3_malloc64(c.tls, uint64(c.bufCap))
	if c.buf == 0 {
		c.bufCap = 0
		panic("sqlite: out of memory")
	}
}

func (s *rawStmt) check(rc int32) {
	if rc != sqlite3.SQLITE_OK && s.c.bindErr == nil {
		s.c.bindErr = s.c.errorOf(rc)
	}
}

// orNull binds *v to parameter i with bind, or NULL when v is nil.
func orNull[T any](s *rawStmt, i int, v *T, bind func(int, T)) {
	if v == nil {
		s.null(i)
		return
	}
	bind(i, *v)
}

func (s *rawStmt) int64(i int, v int64) {
	s.check(sqlite3.Xsqlite3_bind_int64(s.c.tls, s.p, int32(i), v))
}

func (s *rawStmt) float(i int, v float64) {
	s.check(sqlite3.Xsqlite3_bind_double(s.c.tls, s.p, int32(i), v))
}

func (s *rawStmt) null(i int) { s.check(sqlite3.Xsqlite3_bind_null(s.c.tls, s.p, int32(i))) }

// text binds v, copied into the row's reserved buffer: reserve must have
// counted its length.
func (s *rawStmt) text(i int, v string) {
	p := s.place(len(v))
	copy(cbytes(p, len(v)), v)
	s.check(sqlite3.Xsqlite3_bind_text(s.c.tls, s.p, int32(i), p, int32(len(v)), 0))
}

// textBytes binds v as text, like text.
func (s *rawStmt) textBytes(i int, v []byte) {
	p := s.place(len(v))
	copy(cbytes(p, len(v)), v)
	s.check(sqlite3.Xsqlite3_bind_text(s.c.tls, s.p, int32(i), p, int32(len(v)), 0))
}

// blob binds v like text; nil is NULL.
func (s *rawStmt) blob(i int, v []byte) {
	if v == nil {
		s.null(i)
		return
	}
	p := s.place(len(v))
	copy(cbytes(p, len(v)), v)
	s.check(sqlite3.Xsqlite3_bind_blob(s.c.tls, s.p, int32(i), p, int32(len(v)), 0))
}

// place returns the address of n bytes of the reserved buffer.
func (s *rawStmt) place(n int) uintptr {
	c := s.c
	if c.used+n > c.bufCap {
		panic(fmt.Sprintf("sqlite: %d bytes bound, %d reserved", c.used+n, c.bufCap))
	}
	p := c.buf + uintptr(c.used)
	c.used += n
	if n == 0 {
		// A zero-length value still needs a non-NULL pointer, or SQLite
		// binds NULL.
		return c.buf
	}
	return p
}

// exec runs the statement to its end and resets it, and returns the
// number of rows it changed.
func (s *rawStmt) exec() (int, error) {
	if err := s.c.bindErr; err != nil {
		s.c.bindErr = nil
		sqlite3.Xsqlite3_reset(s.c.tls, s.p)
		return 0, err
	}
	for {
		switch rc := sqlite3.Xsqlite3_step(s.c.tls, s.p); rc {
		case sqlite3.SQLITE_ROW:
			continue
		case sqlite3.SQLITE_DONE:
			sqlite3.Xsqlite3_reset(s.c.tls, s.p)
			return int(sqlite3.Xsqlite3_changes(s.c.tls, s.c.db)), nil
		default:
			err := s.c.errorOf(rc)
			sqlite3.Xsqlite3_reset(s.c.tls, s.p)
			return 0, err
		}
	}
}

// next steps the statement to its next row and reports whether there is
// one; at the end, or on an error, it resets the statement.
func (s *rawStmt) next() (bool, error) {
	if err := s.c.bindErr; err != nil {
		s.c.bindErr = nil
		sqlite3.Xsqlite3_reset(s.c.tls, s.p)
		return false, err
	}
	switch rc := sqlite3.Xsqlite3_step(s.c.tls, s.p); rc {
	case sqlite3.SQLITE_ROW:
		return true, nil
	case sqlite3.SQLITE_DONE:
		sqlite3.Xsqlite3_reset(s.c.tls, s.p)
		return false, nil
	default:
		err := s.c.errorOf(rc)
		sqlite3.Xsqlite3_reset(s.c.tls, s.p)
		return false, err
	}
}

// reset ends a statement that next left on a row.
func (s *rawStmt) reset() { sqlite3.Xsqlite3_reset(s.c.tls, s.p) }

func (s *rawStmt) colInt64(i int) int64 {
	return sqlite3.Xsqlite3_column_int64(s.c.tls, s.p, int32(i))
}

// colBlob returns a copy of the blob in column i (nil for NULL).
func (s *rawStmt) colBlob(i int) []byte {
	p := sqlite3.Xsqlite3_column_blob(s.c.tls, s.p, int32(i))
	n := int(sqlite3.Xsqlite3_column_bytes(s.c.tls, s.p, int32(i)))
	if p == 0 {
		return nil
	}
	return append([]byte(nil), cbytes(p, n)...)
}
