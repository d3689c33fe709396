package wire

import "time"

// SessionRequest is the body of POST /v1/session: the one-time sign-in code
// of a link printed by `agenttrail console` (the part after #login=).
type SessionRequest struct {
	Code string `json:"code"`
}

// Session describes a caller's credential: the answer of POST /v1/session
// (with Token, the new session token, shown only then) and of
// GET /v1/session (without it). ExpiresAt is zero for tokens that do not
// expire; Org is "*" for a token of every org.
type Session struct {
	Token     string    `json:"token,omitempty"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Org       string    `json:"org"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Token is one bearer token as GET /v1/tokens lists it: everything but the
// secret, which is never stored. Session tokens carry ExpiresAt.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Org       string    `json:"org"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Tokens is the answer of GET /v1/tokens, in creation order.
type Tokens struct {
	Tokens []Token `json:"tokens"`
}

// TokenRequest is the body of POST /v1/tokens. Org "" means the caller's
// own org.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	Org  string `json:"org"`
}

// NewToken is the answer of POST /v1/tokens: the token's text, shown only
// in this answer, and its record.
type NewToken struct {
	Secret string `json:"secret"`
	Token
}
