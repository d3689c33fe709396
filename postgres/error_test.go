package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestFormatError(t *testing.T) {
	tests := []struct {
		err  error
		code string
	}{
		{&pgconn.PgError{Code: "23505", Message: "duplicate key"}, agenttrail.ECONFLICT},
		{fmt.Errorf("copy: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection"}), agenttrail.EUNAVAILABLE},
		{&pgconn.PgError{Code: "53100", Message: "could not extend file"}, agenttrail.EUNAVAILABLE},
		{&pgconn.PgError{Code: "08006", Message: "connection failure"}, agenttrail.EUNAVAILABLE},
		{&pgconn.PgError{Code: "40P01", Message: "deadlock detected"}, agenttrail.EUNAVAILABLE},
		{&pgconn.PgError{Code: "55P03", Message: "canceling statement due to lock timeout"}, agenttrail.EUNAVAILABLE},
		{&pgconn.PgError{Code: "22021", Message: "invalid byte sequence"}, agenttrail.EINVALID},
		{&pgconn.PgError{Code: "42P01", Message: "relation does not exist"}, agenttrail.EINTERNAL},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, agenttrail.EUNAVAILABLE},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), agenttrail.EUNAVAILABLE},
		{errors.New("cannot encode"), agenttrail.EINTERNAL},
	}
	for _, tc := range tests {
		err := formatError("postgres: op", tc.err)
		if got := agenttrail.ErrorCode(err); got != tc.code {
			t.Errorf("formatError(%v) code = %q, want %q", tc.err, got, tc.code)
		}
		var pg *pgconn.PgError
		if errors.As(err, &pg) {
			t.Errorf("formatError(%v) = %#v wraps a driver error", tc.err, err)
		}
	}
	err := formatError("postgres: copy", fmt.Errorf("copy ids: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection"}))
	if want := "postgres: copy: the database is busy or unavailable: copy ids: terminating connection (sqlstate 57P01)"; err.Error() != want {
		t.Errorf("formatError() = %q, want %q", err, want)
	}
	// What callers are shown holds no text of the driver's.
	err = formatError("postgres: append", fmt.Errorf("copy events: %w", &pgconn.PgError{Code: "22003", Message: "bigint out of range"}))
	if got, want := agenttrail.ErrorMessage(err), "postgres: append: the database refused a value"; got != want {
		t.Errorf("ErrorMessage(formatError(22003)) = %q, want %q", got, want)
	}
	err = formatError("postgres: query", fmt.Errorf("query: %w", context.Canceled))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("formatError(canceled) = %v, want it to wrap context.Canceled", err)
	}
}
