package agenttrail_test

import (
	"encoding/json"
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
