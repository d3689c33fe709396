package agenttrail

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each to one status in one table; only
// EINVALID, ENOTFOUND, ECONFLICT, ETOOLARGE, EUNAUTHORIZED, EFORBIDDEN,
// ERATELIMIT and EUNAVAILABLE messages are shown to callers. EINTERNAL
// messages are logged, never returned.
const (
	EINVALID      = "invalid"      // the caller's input is wrong; Field names it
	ENOTFOUND     = "not_found"    // no such event (or not visible to the caller)
	ECONFLICT     = "conflict"     // the request conflicts with stored state
	ETOOLARGE     = "too_large"    // over a configured size or count limit
	EUNAUTHORIZED = "unauthorized" // no credential, or a bad one
	EFORBIDDEN    = "forbidden"    // a valid credential without the role for this
	ERATELIMIT    = "rate_limited" // too many requests for this credential
	EUNAVAILABLE  = "unavailable"  // temporarily cannot serve (queue or spool full, store down, request ended)
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// Error is the one error type of agenttrail. Code is one of the E* constants;
// Field names the offending parameter or event field (e.g. "limit",
// "metadata.llm.input_tokens") when there is one. Message is what a caller
// may be shown; Err, when set, is the underlying cause, kept for logs and
// for errors.Is and errors.As (a cancelled request's Err is
// context.Canceled) and never shown to callers. The zero value is an
// internal error.
type Error struct {
	Code    string
	Field   string
	Message string
	Err     error
}

// Error implements error. It reads "field: message: cause", leaving out the
// parts that are not set.
func (e *Error) Error() string {
	s := e.text()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// text is the error without its cause: what callers may be shown.
func (e *Error) text() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	if e.Message == "" {
		return "agenttrail error: " + e.Code
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error that names field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ContextError translates the end of a context into an *Error, so every
// store answers a cancelled or timed-out call alike: when err is, or wraps,
// context.Canceled or context.DeadlineExceeded, it returns an EUNAVAILABLE
// error saying op did not finish, with that context error as its cause.
// Otherwise it returns nil.
func ContextError(op string, err error) *Error {
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{Code: EUNAVAILABLE, Message: op + ": the request was cancelled", Err: context.Canceled}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: EUNAVAILABLE, Message: op + ": the request ran out of time", Err: context.DeadlineExceeded}
	}
	return nil
}

// Translated is where every store's translation of its driver's errors
// starts: nil, an error that already is an *Error (from the store's own
// checks) and the end of a context (ContextError) need no knowledge of the
// driver. It reports false when err is a driver error the store must
// translate itself.
func Translated(op string, err error) (error, bool) {
	if err == nil {
		return nil, true
	}
	var e *Error
	if errors.As(err, &e) {
		return err, true
	}
	if ce := ContextError(op, err); ce != nil {
		return ce, true
	}
	return nil, false
}

// ErrorCode returns the code of the first *Error in err's chain, "" for a nil
// error and EINTERNAL for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Code == "" {
			return EINTERNAL
		}
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-facing message of err: "field: message" of
// the *Error for codes callers may see (never its cause), and a generic
// sentence for internal errors.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && ErrorCode(err) != EINTERNAL {
		return e.text()
	}
	return "internal error"
}

// ErrorField returns the Field of the first *Error in err's chain, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
