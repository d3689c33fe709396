package wire_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// TestProblemRoundTrip sends every code through a problem document and
// back, as the server writes it and the client reads it: the code, the
// field and the message come back as they were; internal errors come back
// without their text.
func TestProblemRoundTrip(t *testing.T) {
	codes := []string{agenttrail.EINVALID, agenttrail.ENOTFOUND, agenttrail.ECONFLICT, agenttrail.ETOOLARGE,
		agenttrail.EUNAUTHORIZED, agenttrail.EFORBIDDEN, agenttrail.ERATELIMIT, agenttrail.EUNAVAILABLE}
	for _, code := range codes {
		in := &agenttrail.Error{Code: code, Field: "metadata.llm.input_tokens", Message: "must not be: negative", Err: errors.New("cause")}
		p := wire.ProblemOf(in)
		if p.Status != wire.StatusOf(code) || wire.CodeOf(p.Status) != code {
			t.Errorf("code %s: status %d, CodeOf(status) = %s", code, p.Status, wire.CodeOf(p.Status))
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back wire.Problem
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got := back.Err(p.Status)
		if got.Code != code || got.Field != in.Field || got.Message != in.Message {
			t.Errorf("code %s: %s came back as %+v, want code, field and message of %+v", code, b, got, in)
		}
	}
	p := wire.ProblemOf(errors.New("disk on fire at /var/lib"))
	if p.Status != http.StatusInternalServerError || p.Code != agenttrail.EINTERNAL || p.Detail != "internal error" || p.Field != "" {
		t.Errorf("ProblemOf(foreign error) = %+v, want a 500 saying only \"internal error\"", p)
	}
}

// TestProblemWithoutCode reads a problem of a server that sent no code:
// the status decides.
func TestProblemWithoutCode(t *testing.T) {
	for status, code := range map[int]string{400: agenttrail.EINVALID, 404: agenttrail.ENOTFOUND, 502: agenttrail.EUNAVAILABLE, 500: agenttrail.EINTERNAL, 418: agenttrail.EINVALID} {
		if got := (wire.Problem{Detail: "x"}).Err(status); got.Code != code || got.Message != "x" {
			t.Errorf("Problem{}.Err(%d) = %+v, want code %s", status, got, code)
		}
	}
}

func TestPageJSON(t *testing.T) {
	for _, c := range []struct {
		page wire.Page
		want string
	}{
		{wire.Page{}, `{"events":[],"next_cursor":null}`},
		{wire.Page{NextCursor: "abc"}, `{"events":[],"next_cursor":"abc"}`},
	} {
		b, err := json.Marshal(c.page)
		if err != nil || string(b) != c.want {
			t.Errorf("Marshal(%+v) = %s, %v, want %s", c.page, b, err, c.want)
		}
		var back wire.Page
		if err := json.Unmarshal(b, &back); err != nil || back.NextCursor != c.page.NextCursor {
			t.Errorf("Unmarshal(%s) = %+v, %v", b, back, err)
		}
	}
}
