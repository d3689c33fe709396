package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5/pgconn"
)

// formatError translates an error from pgx into an *agenttrail.Error, so no
// driver type escapes this package. Failures to reach the database become
// EUNAVAILABLE: the ingest pipeline spools and retries those. A cancelled or
// timed-out context is EUNAVAILABLE with the context error as its cause, as
// on every store (agenttrail.ContextError). Other errors keep the driver
// error as their cause, for logs.
func formatError(op string, err error) error {
	if e, ok := agenttrail.Translated(op, err); ok {
		return e
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// Keep the context callers wrapped around the driver error.
		// The driver's text is the cause, for logs; callers are shown
		// only what kind of failure it was (agenttrail.ErrorMessage).
		wrapped := strings.TrimSuffix(err.Error(), pg.Error())
		cause := fmt.Errorf("%s%s (sqlstate %s)", wrapped, pg.Message, pg.Code)
		code := pgCode(pg.Code)
		return &agenttrail.Error{Code: code, Message: op + ": " + pgMessage(code), Err: cause}
	}
	if unreachable(err) {
		return &agenttrail.Error{Code: agenttrail.EUNAVAILABLE, Message: op + ": database unreachable", Err: err}
	}
	return &agenttrail.Error{Code: agenttrail.EINTERNAL, Message: op, Err: err}
}

// pgMessage is what a caller is told of a database error with code.
func pgMessage(code string) string {
	switch code {
	case agenttrail.EINVALID:
		return "the database refused a value"
	case agenttrail.ECONFLICT:
		return "conflicts with stored data"
	case agenttrail.EUNAVAILABLE:
		return "the database is busy or unavailable"
	}
	return "database error"
}

// pgCode maps an SQLSTATE to an error code.
func pgCode(code string) string {
	switch {
	case code == "23505":
		return agenttrail.ECONFLICT
	case strings.HasPrefix(code, "08"), // connection exception
		strings.HasPrefix(code, "53"),    // insufficient resources: disk full, too many connections
		strings.HasPrefix(code, "57P"),   // operator intervention: shutdown, cannot connect now
		code == "40001", code == "40P01", // serialization failure, deadlock: retry
		code == "55P03", code == "57014": // lock_timeout, statement_timeout: busy, retry
		return agenttrail.EUNAVAILABLE
	case strings.HasPrefix(code, "22"): // data exception: a value the database refuses
		return agenttrail.EINVALID
	}
	return agenttrail.EINTERNAL
}

// unreachable reports whether err means the database could not be talked to.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "closed pool")
}
