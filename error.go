package agenttrail

import (
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
	EUNAVAILABLE  = "unavailable"  // temporarily cannot serve (queue or spool full, store down)
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// Error is the one error type of agenttrail. Code is one of the E* constants;
// Field names the offending parameter or event field (e.g. "limit",
// "metadata.llm.input_tokens") when there is one. The zero value is an
// internal error.
type Error struct {
	Code    string
	Field   string
	Message string
}

// Error implements error. It reads "field: message" when Field is set.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	if e.Message == "" {
		return "agenttrail error: " + e.Code
	}
	return e.Message
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error that names field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
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

// ErrorMessage returns the caller-facing message of err: the *Error's text for
// codes callers may see, and a generic sentence for internal errors.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && ErrorCode(err) != EINTERNAL {
		return e.Error()
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
