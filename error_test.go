package agenttrail_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
)

func TestErrorHelpers(t *testing.T) {
	inv := agenttrail.Invalid("limit", "must be at most %d", 200)
	for _, c := range []struct {
		name                 string
		err                  error
		code, field, message string
	}{
		{"nil", nil, "", "", ""},
		{"invalid", inv, agenttrail.EINVALID, "limit", "limit: must be at most 200"},
		{"wrapped", wrapErr{inv}, agenttrail.EINVALID, "limit", "limit: must be at most 200"},
		{"not found", agenttrail.Errorf(agenttrail.ENOTFOUND, "no event %q", "x"), agenttrail.ENOTFOUND, "", `no event "x"`},
		{"internal", agenttrail.Errorf(agenttrail.EINTERNAL, "disk on fire"), agenttrail.EINTERNAL, "", "internal error"},
		{"zero", &agenttrail.Error{}, agenttrail.EINTERNAL, "", "internal error"},
		{"foreign", jsonErr(), agenttrail.EINTERNAL, "", "internal error"},
	} {
		if got := agenttrail.ErrorCode(c.err); got != c.code {
			t.Errorf("ErrorCode(%s) = %q, want %q", c.name, got, c.code)
		}
		if got := agenttrail.ErrorField(c.err); got != c.field {
			t.Errorf("ErrorField(%s) = %q, want %q", c.name, got, c.field)
		}
		if got := agenttrail.ErrorMessage(c.err); got != c.message {
			t.Errorf("ErrorMessage(%s) = %q, want %q", c.name, got, c.message)
		}
	}
}

type wrapErr struct{ err error }

func (w wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapErr) Unwrap() error { return w.err }

func jsonErr() error {
	var v int
	return json.Unmarshal([]byte(`"x"`), &v)
}

// TestErrorCause checks that a cause is kept for logs and errors.Is, and
// never shown to callers.
func TestErrorCause(t *testing.T) {
	disk := errors.New("disk I/O error")
	err := &agenttrail.Error{Code: agenttrail.EUNAVAILABLE, Message: "sqlite: query", Err: disk}
	if !errors.Is(err, disk) {
		t.Errorf("errors.Is(%v, cause) = false", err)
	}
	if got, want := err.Error(), "sqlite: query: disk I/O error"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := agenttrail.ErrorMessage(err), "sqlite: query"; got != want {
		t.Errorf("ErrorMessage() = %q, want %q (no cause)", got, want)
	}
}

func TestContextError(t *testing.T) {
	for _, c := range []struct {
		err   error
		cause error
	}{
		{fmt.Errorf("read: %w", context.Canceled), context.Canceled},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), context.DeadlineExceeded},
		{errors.New("broken pipe"), nil},
	} {
		got := agenttrail.ContextError("postgres: query", c.err)
		if c.cause == nil {
			if got != nil {
				t.Errorf("ContextError(%v) = %v, want nil", c.err, got)
			}
			continue
		}
		if got == nil || got.Code != agenttrail.EUNAVAILABLE || !errors.Is(got, c.cause) || !strings.HasPrefix(got.Message, "postgres: query: ") {
			t.Errorf("ContextError(%v) = %#v, want EUNAVAILABLE wrapping %v", c.err, got, c.cause)
		}
	}
}

func TestTranslated(t *testing.T) {
	if err, ok := agenttrail.Translated("op", nil); err != nil || !ok {
		t.Errorf("nil: got %v, %v; want nil, true", err, ok)
	}
	own := &agenttrail.Error{Code: agenttrail.EINVALID, Message: "x"}
	if err, ok := agenttrail.Translated("op", fmt.Errorf("wrapped: %w", own)); !ok || agenttrail.ErrorCode(err) != agenttrail.EINVALID {
		t.Errorf("an *Error: got %v, %v; want it passed through", err, ok)
	}
	if err, ok := agenttrail.Translated("op", fmt.Errorf("q: %w", context.Canceled)); !ok || agenttrail.ErrorCode(err) != agenttrail.EUNAVAILABLE || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, %v; want agenttrail.EUNAVAILABLE caused by context.Canceled", err, ok)
	}
	if err, ok := agenttrail.Translated("op", errors.New("driver")); ok || err != nil {
		t.Errorf("a driver error: got %v, %v; want nil, false", err, ok)
	}
}
