package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testSecrets are made-up values in the documented formats, split so that
// secret scanners do not flag this file, each in the context a surface
// would record it in.
func testSecrets() []struct{ kind, text, secret string } {
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0." + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	pem := "-----BEGIN RSA PRIVATE" + " KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy\n0AHB7MhgwMBQ6PLGl0kGg3Z1rjrjE8NB\n-----END RSA PRIVATE KEY-----"
	return []struct{ kind, text, secret string }{
		{"aws_access_key_id", "aws s3 ls with AKIA" + "IOSFODNN7EXAMPLE", "AKIA" + "IOSFODNN7EXAMPLE"},
		{"aws_secret_key", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"},
		{"bearer", "Authorization: Bearer 7f3a9c2e1b4d8f60" + "a5e2d", "7f3a9c2e1b4d8f60" + "a5e2d"},
		{"openai_key", "OPENAI_API_KEY=sk-" + "proj-Xk2mPq9rTs4vWy7zAb3cDe6fGh", "sk-" + "proj-Xk2mPq9rTs4vWy7zAb3cDe6fGh"},
		{"anthropic_key", "x-api-key: sk-" + "ant-api03-Zy9xWv8uTs7rQp6oNm5lKj4iHg3fEd2cBa1", "sk-" + "ant-api03-Zy9xWv8uTs7rQp6oNm5lKj4iHg3fEd2cBa1"},
		{"github_token", "git clone https://ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5@github.com/o/r", "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5"},
		{"slack_token", "slack xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"},
		{"jwt", "session " + jwt + " expired", jwt},
		{"private_key", "wrote " + pem + " to id_rsa", "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn"},
		{"url_password", "postgres://app:s3cr3t-pw-" + "91x@db.internal:5432/app", "s3cr3t-pw-" + "91x"},
		{"kv_secret", "PGPASSWORD=hunter2-" + "zz7 psql -h db", "hunter2-" + "zz7"},
		{"kv_secret", "mysql --password=c0rrect-" + "h0rse -u root", "c0rrect-" + "h0rse"},
	}
}

// testRedactionAtRest stores events carrying each kind of secret in every
// place an event has text, then reads the database directly and every API
// answer: no secret may be left.
func testRedactionAtRest(t *testing.T, b backend) {
	se := newSecEnv(t, secOptions{backend: b})
	secrets := testSecrets()
	// The server's own tokens are secrets too.
	secrets = append(secrets, struct{ kind, text, secret string }{"agenttrail_token", "export AGENTTRAIL_TOKEN=" + se.tokens["acme-read"], se.tokens["acme-read"]})
	var events []string
	for i, s := range secrets {
		line := strings.Split(s.text, "\n")[0] // fields that refuse line breaks
		events = append(events, eventJSON(map[string]any{
			"id":          "sec-" + s.kind + "-" + string(rune('a'+i)),
			"description": s.text,
			"actor_name":  line,
			"resource_id": line,
			"action":      "exec " + line,
			"metadata": map[string]any{
				"shell":    map[string]any{"command": s.text, "args": []any{"-c", s.text}},
				"password": "pw-" + s.secret,
			},
		}))
	}
	if got := se.ingestAs(t, "acme-ingest", events...); got.Accepted != len(events) {
		t.Fatalf("POST secrets = %+v, want %d accepted", got, len(events))
	}
	// A reader searching for a secret puts it in a query parameter, which
	// the read's audit event records: redacted too.
	awsKey := secrets[0].secret
	if r := se.do(t, http.MethodGet, "/v1/events?q="+url.QueryEscape(awsKey), se.as("acme-read"), nil); r.status != http.StatusOK {
		t.Fatalf("GET ?q=<secret> = %d: %s", r.status, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := se.do(t, http.MethodGet, "/v1/events?source=audit&actor_id=acme-read&action=events.query", se.as("root"), nil)
		if strings.Contains(string(r.body), "REDACTED:aws_access_key_id") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no redacted audit event of the search for a secret: %s", r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	answers := map[string]string{}
	for _, p := range []string{"/v1/events?limit=200&sort=seq", "/v1/export?format=ndjson", "/v1/export?format=csv", "/v1/export?format=cef", "/v1/events/sec-jwt-h"} {
		r := se.do(t, http.MethodGet, p, se.as("root"), nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", p, r.status, r.body)
		}
		answers["GET "+p] = string(r.body)
	}
	if !strings.Contains(answers["GET /v1/events?limit=200&sort=seq"], "[REDACTED:") {
		t.Fatalf("no redaction marker in the stored events: the check cannot fail")
	}
	stored := se.dump(t)
	for _, s := range secrets {
		for where, body := range answers {
			if strings.Contains(body, s.secret) {
				t.Errorf("%s answers with the %s secret", where, s.kind)
			}
		}
		for _, v := range stored {
			if strings.Contains(v, s.secret) {
				t.Errorf("the %s store keeps the %s secret in %.120q", b.name, s.kind, v)
				break
			}
		}
	}
}

func TestRedactionAtRest(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { testRedactionAtRest(t, b) })
	}
}
