package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/agenttrail/agenttrail"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// formatError translates a driver error into an *agenttrail.Error at the
// boundary, so no caller sees driver types: a busy or locked database, a
// full disk or an I/O error are EUNAVAILABLE (retrying later can succeed);
// anything else is EINTERNAL. A cancelled context stays in the chain so
// callers can test errors.Is(err, context.Canceled).
func formatError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *agenttrail.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		cause := context.Canceled
		if errors.Is(err, context.DeadlineExceeded) {
			cause = context.DeadlineExceeded
		}
		return fmt.Errorf("%w: %w", agenttrail.Errorf(agenttrail.EUNAVAILABLE, "sqlite: %s", op), cause)
	}
	code := agenttrail.EINTERNAL
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			code = agenttrail.EUNAVAILABLE
		}
	}
	return agenttrail.Errorf(code, "sqlite: %s: %v", op, err)
}
