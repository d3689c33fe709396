package sqlite

import (
	"errors"

	"github.com/agenttrail/agenttrail"
	sqlite3 "modernc.org/sqlite/lib"
)

// formatError translates a driver error into an *agenttrail.Error at the
// boundary, so no caller sees driver types: a busy or locked database, a
// full disk or an I/O error are EUNAVAILABLE (retrying later can succeed);
// a cancelled or timed-out context is EUNAVAILABLE with the context error
// as its cause, as on every store (agenttrail.ContextError); anything else
// is EINTERNAL. The driver error is kept as the cause, for logs.
func formatError(op string, err error) error {
	if e, ok := agenttrail.Translated("sqlite: "+op, err); ok {
		return e
	}
	code := agenttrail.EINTERNAL
	var se interface{ Code() int } // *sqlite.Error, *rawError
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			code = agenttrail.EUNAVAILABLE
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
			// A value the database refuses, as PostgreSQL's class 22:
			// the caller is told that much, never the driver's text.
			return &agenttrail.Error{Code: agenttrail.EINVALID, Message: "sqlite: " + op + ": the database refused a value", Err: err}
		}
	}
	return &agenttrail.Error{Code: code, Message: "sqlite: " + op, Err: err}
}
