package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// maxSmallBody bounds the JSON bodies of the session and token endpoints.
const maxSmallBody = 16 << 10

// tokenFile returns the token store behind the server's Authenticator, or
// an error when the server has none (a server without tokens has no
// sessions and no tokens to manage).
func (s *Server) tokenFile() (*TokenFile, error) {
	if ta, ok := s.auth.(*TokenAuth); ok {
		return ta.file, nil
	}
	return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "this server has no token store")
}

// reloadTokens loads the token file after this server changed it, so a
// revocation through the API ends the token's requests at once rather than
// at the next look at the file.
func (s *Server) reloadTokens() {
	if ta, ok := s.auth.(*TokenAuth); ok {
		if err := ta.reload(false); err != nil {
			s.log.Error("reloading tokens; keeping the ones loaded before", "path", ta.file.Path(), "err", err)
		}
	}
}

// decodeSmall decodes r's JSON body into v; unknown fields are an error
// naming them, as unknown query parameters are.
func decodeSmall(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxSmallBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return agenttrail.Invalid(strings.Trim(f, `"`), "unknown field")
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return agenttrail.Invalid(te.Field, "must be a %s", te.Type)
		case errors.As(err, &se), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return agenttrail.Invalid("body", "is not a JSON object: %v", err)
		}
		return agenttrail.Invalid("body", "%v", err)
	}
	return nil
}

// postSession is POST /v1/session: it exchanges the one-time code of a
// sign-in link for a session token. The route is open: the code is the
// credential.
func (s *Server) postSession(r *http.Request) (any, error) {
	var req wire.SessionRequest
	if err := decodeSmall(r, &req); err != nil {
		return nil, err
	}
	if req.Code == "" {
		return nil, agenttrail.Invalid("code", "is required")
	}
	file, err := s.tokenFile()
	if err != nil {
		return nil, err
	}
	token, rec, err := file.Exchange(req.Code, s.now())
	if err != nil {
		return nil, err
	}
	s.log.Info("console session opened", "name", rec.Name, "role", rec.Role, "org", rec.Org)
	return wire.Session{Token: token, Name: rec.Name, Role: string(rec.Role), Org: rec.Org, ExpiresAt: rec.ExpiresAt}, nil
}

// getSession is GET /v1/session: who the caller is (name, role, org, and
// when its session ends), so a client can show what it may do.
func (s *Server) getSession(r *http.Request) (any, error) {
	for _, k := range sortedKeys(r.URL.Query()) {
		return nil, agenttrail.Invalid(k, "unknown query parameter")
	}
	p := principalOf(r.Context())
	return wire.Session{Name: p.Name, Role: string(p.Role), Org: p.Org, ExpiresAt: p.Expires}, nil
}

// deleteSession is DELETE /v1/session: signing out revokes the caller's
// session token. Tokens that do not expire are not sessions; they are
// revoked through /v1/tokens, and signing out with one changes nothing.
func (s *Server) deleteSession(r *http.Request) (any, error) {
	p := principalOf(r.Context())
	out := wire.Session{Name: p.Name, Role: string(p.Role), Org: p.Org, ExpiresAt: p.Expires}
	if p.Expires.IsZero() {
		return out, nil
	}
	file, err := s.tokenFile()
	if err != nil {
		return nil, err
	}
	keepThroughRevocation(r.Context())
	if _, err := file.Revoke(p.Name, p.Name, s.now()); err != nil {
		return nil, err
	}
	s.reloadTokens()
	return out, nil
}

// listTokens is GET /v1/tokens: every token the caller's org may see, revoked
// ones included, without secrets.
func (s *Server) listTokens(r *http.Request) (any, error) {
	for _, k := range sortedKeys(r.URL.Query()) {
		return nil, agenttrail.Invalid(k, "unknown query parameter")
	}
	file, err := s.tokenFile()
	if err != nil {
		return nil, err
	}
	recs, err := file.List()
	if err != nil {
		return nil, err
	}
	p := principalOf(r.Context())
	out := wire.Tokens{Tokens: []wire.Token{}}
	for _, t := range recs {
		if p.Org == AllOrgs || t.Org == p.Org {
			out.Tokens = append(out.Tokens, wireToken(t))
		}
	}
	return out, nil
}

// createToken is POST /v1/tokens. An admin of one org creates tokens of
// that org only.
func (s *Server) createToken(r *http.Request) (any, error) {
	var req wire.TokenRequest
	if err := decodeSmall(r, &req); err != nil {
		return nil, err
	}
	p := principalOf(r.Context())
	if req.Org == "" {
		req.Org = p.Org
	}
	if p.Org != AllOrgs && req.Org != p.Org {
		return nil, agenttrail.Errorf(agenttrail.EFORBIDDEN, "a token of org %s may create tokens of that org only, not of %q", p.Org, req.Org)
	}
	file, err := s.tokenFile()
	if err != nil {
		return nil, err
	}
	secret, rec, err := file.Create(req.Name, Role(req.Role), req.Org, p.Name, s.now())
	if err != nil {
		return nil, err
	}
	return wire.NewToken{Secret: secret, Token: wireToken(rec)}, nil
}

// revokeToken is DELETE /v1/tokens/{id}.
func (s *Server) revokeToken(r *http.Request) (any, error) {
	file, err := s.tokenFile()
	if err != nil {
		return nil, err
	}
	id, p := r.PathValue("id"), principalOf(r.Context())
	recs, err := file.List()
	if err != nil {
		return nil, err
	}
	for _, t := range recs {
		if t.ID != id || t.Revoked() {
			continue
		}
		if p.Org != AllOrgs && t.Org != p.Org {
			break // another org's token is not there for this caller
		}
		if id == p.TokenID {
			keepThroughRevocation(r.Context())
		}
		rec, err := file.Revoke(id, p.Name, s.now())
		if err != nil {
			return nil, err
		}
		s.reloadTokens()
		return wireToken(rec), nil
	}
	return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "no live token with id %q", id)
}

func wireToken(t TokenRecord) wire.Token {
	return wire.Token{
		ID: t.ID, Name: t.Name, Role: string(t.Role), Org: t.Org, CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy,
		ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, RevokedBy: t.RevokedBy,
	}
}
