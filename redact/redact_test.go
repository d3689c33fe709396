package redact_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/redact"
)

// The sample secrets are split so that secret scanners do not flag this
// file; they are made-up values in the documented formats.
var (
	awsKeyID     = "AKIA" + "IOSFODNN7EXAMPLE"
	awsSecret    = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
	openaiKey    = "sk-" + "proj-Xk2mPq9rTs4vWy7zAb3cDe6fGh"
	openaiLegacy = "sk-" + "T3BlbkFJaBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789ab"
	anthropicKey = "sk-" + "ant-api03-Zy9xWv8uTs7rQp6oNm5lKj4iHg3fEd2cBa1"
	githubToken  = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5"
	githubPAT    = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123"
	slackToken   = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	slackHook    = "services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
	stripeKey    = "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc"
	googleKey    = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
	jwtToken     = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
		"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0." +
		"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	privateKey = "-----BEGIN RSA PRIVATE" + " KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy\n" +
		"0AHB7MhgwMBQ6PLGl0kGg3Z1rjrjE8NB\n-----END RSA PRIVATE KEY-----"
	bearerToken = "7f3a9c2e1b4d8f60a5e2"
	basicCreds  = "YWxhZGRpbjpvcGVuc2VzYW1l" // aladdin:opensesame
)

// redactCase is one secret in context: Text holds Secret, and redacting Text
// gives Want.
type redactCase struct {
	kind   string
	text   string
	secret string
	want   string
}

func redactCases() []redactCase {
	return []redactCase{
		{"aws_access_key_id", "using key " + awsKeyID + " for s3", awsKeyID, "using key [REDACTED:aws_access_key_id] for s3"},
		{"aws_secret_key", "aws_secret_access_key=" + awsSecret, awsSecret, "aws_secret_access_key=[REDACTED:aws_secret_key]"},
		{"aws_secret_key", "the AWS secret is " + awsSecret + " today", awsSecret, "the AWS secret is [REDACTED:aws_secret_key] today"},
		{"aws_secret_key", `{"SecretAccessKey": "` + awsSecret + `"}`, awsSecret, `{"SecretAccessKey": "[REDACTED:aws_secret_key]"}`},
		{"bearer", "Authorization: Bearer " + bearerToken, bearerToken, "Authorization: Bearer [REDACTED:bearer]"},
		{"bearer", "sent bearer " + bearerToken + " upstream", bearerToken, "sent bearer [REDACTED:bearer] upstream"},
		{"basic_auth", "Authorization: Basic " + basicCreds, basicCreds, "Authorization: Basic [REDACTED:basic_auth]"},
		{"openai_key", "OPENAI_API_KEY=" + openaiKey, openaiKey, "OPENAI_API_KEY=[REDACTED:openai_key]"},
		{"openai_key", "key " + openaiLegacy + ".", openaiLegacy, "key [REDACTED:openai_key]."},
		{"anthropic_key", "x-api-key: " + anthropicKey, anthropicKey, "x-api-key: [REDACTED:anthropic_key]"},
		{"github_token", "git clone https://" + githubToken + "@github.com/o/r", githubToken, "git clone https://[REDACTED:github_token]@github.com/o/r"},
		{"github_token", "GH_TOKEN=" + githubPAT + " gh pr list", githubPAT, "GH_TOKEN=[REDACTED:github_token] gh pr list"},
		{"slack_token", "slack " + slackToken, slackToken, "slack [REDACTED:slack_token]"},
		{"slack_webhook", "POST https://hooks.slack.com/" + slackHook, slackHook, "POST https://hooks.slack.com/[REDACTED:slack_webhook]"},
		{"stripe_key", "stripe.api_key = '" + stripeKey + "'", stripeKey, "stripe.api_key = '[REDACTED:stripe_key]'"},
		{"google_api_key", "https://maps.googleapis.com/maps/api/geocode/json?key=" + googleKey + "&address=x", googleKey,
			"https://maps.googleapis.com/maps/api/geocode/json?key=[REDACTED:google_api_key]&address=x"},
		{"jwt", "cookie-less session " + jwtToken + " expired", jwtToken, "cookie-less session [REDACTED:jwt] expired"},
		{"jwt", "Authorization: Bearer " + jwtToken, jwtToken, "Authorization: Bearer [REDACTED:jwt]"},
		{"private_key", "wrote " + privateKey + " to id_rsa", privateKey, "wrote [REDACTED:private_key] to id_rsa"},
		{"private_key", "cat key.pem\n" + privateKey[:60], privateKey[:60], "cat key.pem\n[REDACTED:private_key]"},
		{"url_password", "postgres://app:s3cr3t-pw@db.internal:5432/app", "s3cr3t-pw", "postgres://app:[REDACTED:url_password]@db.internal:5432/app"},
		{"url_password", "redis://:hunter2@cache:6379 and p@ss", "hunter2", "redis://:[REDACTED:url_password]@cache:6379 and p@ss"},
		{"kv_secret", "PGPASSWORD=hunter2 psql -h db", "hunter2", "PGPASSWORD=[REDACTED:kv_secret] psql -h db"},
		{"kv_secret", "GET /v1/items?api_key=k3y-v4lue&page=2", "k3y-v4lue", "GET /v1/items?api_key=[REDACTED:kv_secret]&page=2"},
		{"kv_secret", "mysql --password hunter2 -u root", "hunter2", "mysql --password [REDACTED:kv_secret] -u root"},
		{"kv_secret", "vault login --token=s.AbCdEf123", "s.AbCdEf123", "vault login --token=[REDACTED:kv_secret]"},
		{"kv_secret", `db: {"password": "correct horse", "user": "bob"}`, "correct horse", `db: {"password": "[REDACTED:kv_secret]", "user": "bob"}`},
		{"kv_secret", `env {\"client_secret\":\"cs-1234\"}`, "cs-1234", `env {\"client_secret\":\"[REDACTED:kv_secret]\"}`},
		{"kv_secret", "Cookie: session=abc123; theme=dark\nHost: x", "session=abc123", "Cookie: [REDACTED:kv_secret]\nHost: x"},
		{"kv_secret", "X-Auth-Token: t0k3n-value", "t0k3n-value", "X-Auth-Token: [REDACTED:kv_secret]"},
		{"kv_secret", "Authorization: Digest username=bob, response=6629fae4", "username=bob, response=6629fae4", "Authorization: Digest [REDACTED:kv_secret]"},
		{"kv_secret", "GET https://b.s3.amazonaws.com/k?X-Amz-Signature=9f86d081884c7d65&X-Amz-Expires=60", "9f86d081884c7d65",
			"GET https://b.s3.amazonaws.com/k?X-Amz-Signature=[REDACTED:kv_secret]&X-Amz-Expires=60"},
		{"kv_secret", "PUT /c/b?sv=2022-11-02&sig=AbC%2Bd3f%3D", "AbC%2Bd3f%3D", "PUT /c/b?sv=2022-11-02&sig=[REDACTED:kv_secret]"},
	}
}

func newRedactor(t testing.TB, extra ...redact.Pattern) *redact.Redactor {
	t.Helper()
	r, err := redact.New(extra...)
	if err != nil {
		t.Fatalf("New(%v) error = %v", extra, err)
	}
	return r
}

func TestRedactorString(t *testing.T) {
	r := newRedactor(t)
	for _, c := range redactCases() {
		got := r.String(c.text)
		if got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.text, got, c.want)
		}
		if strings.Contains(got, c.secret) {
			t.Errorf("String(%q) = %q still holds the %s %q", c.text, got, c.kind, c.secret)
		}
		if !strings.Contains(got, "[REDACTED:"+c.kind+"]") {
			t.Errorf("String(%q) = %q, want a marker naming %s", c.text, got, c.kind)
		}
		if again := r.String(got); again != got {
			t.Errorf("String(String(%q)) = %q, want %q (idempotent)", c.text, again, got)
		}
	}
}

func TestRedactorStringLeavesOrdinaryText(t *testing.T) {
	r := newRedactor(t)
	for _, s := range []string{
		"",
		"ran git status in /home/agent/work",
		"019297e4-5b1c-7a3e-9f00-4c2d8e6a1b7f", // UUIDv7
		"GET /v2/library/alpine/blobs/sha256:9c6f0724472873bb50a2ae67a9e7adcb57673a183cea8b06eb778dca859181b5", // digest in a path
		"secret rotated at commit 3f786850e387550fdab836ed7e6dc881de23001b",                                    // SHA-1 near "secret"
		"GET /api/v1/namespaces/default/secrets/db-password",                                                   // k8s secret by name
		"disk-controller-manager-7d9f8c6b5-x2x4k",                                                              // k8s pod
		"task-sk-runner-6bd8f9c7d5-abcdefghijklmnopqrstuvwxyz",                                                 // "sk-" inside a name
		"max_tokens: 1024, input_tokens=5, token_count=7, access_key_id=AKIDEXAMPLE",                           // counters and ids
		"secretName: db-creds, tokenizer: cl100k, signature_valid: true",                                       // names that only contain a word
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",                                  // an ARN field
		"the bearer of bad news used basic authentication",                                                     // prose
		"Bearer authentication is configured",                                                                  // prose
		"https://api.github.com/repos/agenttrail/agenttrail/pulls?state=open&page=2",                           // URL without userinfo
		"git@github.com:agenttrail/agenttrail.git",                                                             // scp-like, no password
		"mailto:bob@example.com at 2024-05-01T10:00:00Z",                                                       // time and email
		"CONNECT api.openai.com:443",                                                                           // host:port
		"--token-file /var/run/secrets/token --max-tokens 100",                                                 // flags that are not secrets
		"password: ",                      // nothing to redact
		"[REDACTED:github_token] already", // a marker
	} {
		if got := r.String(s); got != s {
			t.Errorf("String(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestRedactorEventEveryPlace(t *testing.T) {
	r := newRedactor(t)
	for _, c := range redactCases() {
		text, _ := json.Marshal(c.text)
		e := agenttrail.Event{
			Description: c.text, Action: c.text, ResourceID: c.text, ActorName: c.text,
			Metadata: json.RawMessage(`{"mcp":{"arguments":{"cmd":` + string(text) + `}},` +
				`"list":["plain",` + string(text) + `],"headers":{"X-Api-Key":` + string(text) + `}}`),
		}
		r.Event(&e)
		for field, got := range map[string]string{
			"description": e.Description, "action": e.Action, "resource_id": e.ResourceID, "actor_name": e.ActorName,
		} {
			if got != c.want {
				t.Errorf("Event(%q).%s = %q, want %q", c.text, field, got, c.want)
			}
		}
		var m struct {
			MCP struct {
				Arguments struct{ Cmd string }
			}
			List    []string
			Headers map[string]string
		}
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			t.Fatalf("Event(%q) metadata = %s, not valid JSON: %v", c.text, e.Metadata, err)
		}
		if m.MCP.Arguments.Cmd != c.want {
			t.Errorf("Event(%q) metadata.mcp.arguments.cmd = %q, want %q", c.text, m.MCP.Arguments.Cmd, c.want)
		}
		if len(m.List) != 2 || m.List[0] != "plain" || m.List[1] != c.want {
			t.Errorf("Event(%q) metadata.list = %q, want [plain %q]", c.text, m.List, c.want)
		}
		if got := m.Headers["X-Api-Key"]; !strings.HasPrefix(got, "[REDACTED:") || strings.Contains(got, c.secret) {
			t.Errorf("Event(%q) metadata.headers.X-Api-Key = %q, want a marker", c.text, got)
		}
		before := append([]byte(nil), e.Metadata...)
		r.Event(&e)
		if !bytes.Equal(e.Metadata, before) || e.Description != c.want {
			t.Errorf("Event twice (%q) metadata = %s, want %s (idempotent)", c.text, e.Metadata, before)
		}
	}
}

func TestRedactorEventSecretKeys(t *testing.T) {
	r := newRedactor(t)
	for _, c := range []struct{ in, want string }{
		{`{"password":"hunter2","user":"bob"}`, `{"password":"[REDACTED:kv_secret]","user":"bob"}`},
		{`{"db":{"DB_PASSWORD":"x","port":5432}}`, `{"db":{"DB_PASSWORD":"[REDACTED:kv_secret]","port":5432}}`},
		{`{"Authorization":"Bearer ` + bearerToken + `"}`, `{"Authorization":"[REDACTED:kv_secret]"}`},
		{`{"apiKey":"` + openaiKey + `"}`, `{"apiKey":"[REDACTED:openai_key]"}`},
		{`{"credentials":{"user":"u","pass":"p"},"pin_token":12345}`, `{"credentials":"[REDACTED:kv_secret]","pin_token":"[REDACTED:kv_secret]"}`},
		{`{"Set-Cookie":["a=1","b=2"]}`, `{"Set-Cookie":"[REDACTED:kv_secret]"}`},
		{`{"client_secret":"","session_token":null,"has_password":true}`, `{"client_secret":"","session_token":null,"has_password":true}`},
		{`{"llm":{"model":"m","input_tokens":12,"output_tokens":3},"max_tokens":9,"access_key_id":"AKIDX","secretName":"s"}`,
			`{"llm":{"model":"m","input_tokens":12,"output_tokens":3},"max_tokens":9,"access_key_id":"AKIDX","secretName":"s"}`},
		{`{"password" : "spaced"}`, `{"password":"[REDACTED:kv_secret]"}`},
		{`{"big":12345678901234567890123,"token":"t","s":"<&>"}`, `{"big":12345678901234567890123,"s":"<&>","token":"[REDACTED:kv_secret]"}`},
		{`{"pass\u0077ord":"escaped key"}`, `{"password":"[REDACTED:kv_secret]"}`},
		{`{"note":"\u0041KIAIOSFODNN7EXAMPLE"}`, `{"note":"[REDACTED:aws_access_key_id]"}`},
		{`{"dsn":"postgres:\/\/u:pw@h\/db"}`, `{"dsn":"postgres://u:[REDACTED:url_password]@h/db"}`},
		{`{"cmd":"{\"password\"\n: \"x\"}"}`, `{"cmd":"{\"password\"\n: \"[REDACTED:kv_secret]\"}"}`},
		{`["token=abc", {"secret": 1}]`, `["token=[REDACTED:kv_secret]",{"secret":"[REDACTED:kv_secret]"}]`},
		// Short secret words name a secret as the whole last word of a key.
		{`{"pwd":"a","DB_PASS":"b","dbPass":"c","auth":"d","session":"e","ssh_key":"f","sshKey":"g"}`,
			`{"DB_PASS":"[REDACTED:kv_secret]","auth":"[REDACTED:kv_secret]","dbPass":"[REDACTED:kv_secret]","pwd":"[REDACTED:kv_secret]","session":"[REDACTED:kv_secret]","sshKey":"[REDACTED:kv_secret]","ssh_key":"[REDACTED:kv_secret]"}`},
		{`{"bypass":"a","oauth_flow":"b","session_id":"c","compass":"d","author":"e","pass":true}`,
			`{"bypass":"a","oauth_flow":"b","session_id":"c","compass":"d","author":"e","pass":true}`},
		// A secret used as a key is redacted like any other string.
		{`{"` + openaiKey + `":1,"x":{"` + openaiKey + `-2":2}}`, `{"[REDACTED:openai_key]":1,"x":{"[REDACTED:openai_key]":2}}`},
	} {
		e := agenttrail.Event{Metadata: json.RawMessage(c.in)}
		r.Event(&e)
		if string(e.Metadata) != c.want {
			t.Errorf("Event(metadata %s) metadata = %s, want %s", c.in, e.Metadata, c.want)
		}
		if !json.Valid(e.Metadata) {
			t.Errorf("Event(metadata %s) metadata = %s, not valid JSON", c.in, e.Metadata)
		}
	}
}

// TestRedactorKeepsAccessKeyID checks the one identifier kept although it
// looks like a secret: an access key id alone under
// metadata.aws.access_key_id. Anywhere else, or with anything beside it,
// it is redacted as before.
func TestRedactorKeepsAccessKeyID(t *testing.T) {
	r := newRedactor(t)
	const temp = "ASIA" + "Y34FZKBOKMUTVV7A"
	for _, c := range []struct{ in, want string }{
		{`{"aws":{"service":"s3","access_key_id":"` + awsKeyID + `"}}`, `{"aws":{"service":"s3","access_key_id":"` + awsKeyID + `"}}`},
		{`{"aws":{"access_key_id":"` + temp + `"}}`, `{"aws":{"access_key_id":"` + temp + `"}}`},
		{`{"aws":{"access_key_id":"AKIAIOSFODNN7EXAMPLE","error_message":"password=hunter2"}}`,
			`{"aws":{"access_key_id":"` + awsKeyID + `","error_message":"password=[REDACTED:kv_secret]"}}`},
		{`{"aws":{"access_key_id":"` + awsKeyID + ` password=hunter2"}}`, `{"aws":{"access_key_id":"[REDACTED:aws_access_key_id] password=[REDACTED:kv_secret]"}}`},
		{`{"aws":{"access_key_id":"` + awsKeyID + `","note":"` + awsKeyID + `"}}`,
			`{"aws":{"access_key_id":"` + awsKeyID + `","note":"[REDACTED:aws_access_key_id]"}}`},
		{`{"shell":{"access_key_id":"` + awsKeyID + `"}}`, `{"shell":{"access_key_id":"[REDACTED:aws_access_key_id]"}}`},
		{`{"aws":{"upstream":{"access_key_id":"` + awsKeyID + `"}}}`, `{"aws":{"upstream":{"access_key_id":"[REDACTED:aws_access_key_id]"}}}`},
	} {
		e := agenttrail.Event{Description: "signed with " + awsKeyID, Metadata: json.RawMessage(c.in)}
		r.Event(&e)
		if string(e.Metadata) != c.want {
			t.Errorf("Event(metadata %s) metadata = %s, want %s", c.in, e.Metadata, c.want)
		}
		if strings.Contains(e.Description, awsKeyID) {
			t.Errorf("Event(metadata %s) kept the key id in the description: %q", c.in, e.Description)
		}
	}
}

func TestRedactorEventKeepsCleanMetadata(t *testing.T) {
	r := newRedactor(t)
	for _, in := range []string{
		`{ "shell": {"command": "git", "args": ["status"], "cwd": "/w", "exit_code": 0} }`,
		`{"llm":{"provider":"anthropic","model":"claude","input_tokens":10,"cost_usd":0.01}}`,
		`{"http":{"domain":"api.github.com","path":"/repos?page=2","note":"caf\u00e9 \u001b[0m"}}`,
		`{"url":"https://example.com/a@b"}`, // '@' after the path: no userinfo
		`{"secret_ref":"vault:kv/app"}`,
		`{"a":"b"`, // invalid and clean: left to Validate
	} {
		e := agenttrail.Event{Metadata: json.RawMessage(in)}
		r.Event(&e)
		if string(e.Metadata) != in {
			t.Errorf("Event(metadata %s) metadata = %s, want it unchanged", in, e.Metadata)
		}
	}
}

func TestRedactorEventInvalidMetadata(t *testing.T) {
	r := newRedactor(t)
	e := agenttrail.Event{Metadata: json.RawMessage(`{"token": "abc", oops}`)}
	r.Event(&e)
	if want := `{"token": "[REDACTED:kv_secret]", oops}`; string(e.Metadata) != want {
		t.Errorf("Event(invalid metadata) metadata = %s, want %s", e.Metadata, want)
	}
}

func TestRedactorEventLLMCache(t *testing.T) {
	r := newRedactor(t)
	e := agenttrail.Event{}
	if err := e.SetLLM(agenttrail.LLM{Model: "m", InputTokens: 7}); err != nil {
		t.Fatalf("SetLLM error = %v", err)
	}
	if err := e.SetMetadata("auth", map[string]string{"token": "abc"}); err != nil {
		t.Fatalf("SetMetadata error = %v", err)
	}
	if _, ok := e.LLM(); !ok {
		t.Fatal("LLM() ok = false before redaction")
	}
	r.Event(&e)
	l, ok := e.LLM()
	if !ok || l.InputTokens != 7 || l.Model != "m" {
		t.Errorf("LLM() after redaction = %+v, %v, want model m and 7 input tokens", l, ok)
	}
	if strings.Contains(string(e.Metadata), "abc") {
		t.Errorf("metadata = %s, want auth.token redacted", e.Metadata)
	}
}

func TestNewPatterns(t *testing.T) {
	r := newRedactor(t,
		redact.Pattern{Kind: "acme_key", Regexp: `acme_[0-9a-f]{16}`},
		redact.Pattern{Kind: "session", Regexp: `sess=(?P<secret>[0-9]{6,})`},
		redact.Pattern{Kind: "ssn", Regexp: `(?:^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}`}, // no literal prefix
	)
	for _, c := range []struct{ in, want string }{
		{"key acme_0123456789abcdef!", "key [REDACTED:acme_key]!"},
		{"cookie sess=1234567; path=/", "cookie sess=[REDACTED:session]; path=/"},
		{"ssn 123-45-6789", "ssn[REDACTED:ssn]"},
		{"acme_0123 sess=12", "acme_0123 sess=12"},
		{"token=" + githubToken, "token=[REDACTED:github_token]"}, // built-ins still apply
	} {
		if got := r.String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	e := agenttrail.Event{Metadata: json.RawMessage(`{"id":"123-45-6789"}`)}
	r.Event(&e)
	if want := `{"id":"[REDACTED:ssn]"}`; string(e.Metadata) != want {
		t.Errorf("Event(metadata with an unanchored pattern) = %s, want %s", e.Metadata, want)
	}
}

func TestNewErrors(t *testing.T) {
	many := make([]redact.Pattern, redact.MaxPatterns+1)
	for i := range many {
		many[i] = redact.Pattern{Kind: "k", Regexp: "x"}
	}
	for _, c := range []struct {
		name     string
		patterns []redact.Pattern
		field    string
	}{
		{"empty kind", []redact.Pattern{{Kind: "", Regexp: "x"}}, "redact.patterns[0]"},
		{"bad kind", []redact.Pattern{{Kind: "ok", Regexp: "x"}, {Kind: "Bad Kind", Regexp: "x"}}, "redact.patterns[1]"},
		{"bad regexp", []redact.Pattern{{Kind: "k", Regexp: "("}}, "redact.patterns[0]"},
		{"empty match", []redact.Pattern{{Kind: "k", Regexp: "x*"}}, "redact.patterns[0]"},
		{"too many", many, "redact.patterns"},
	} {
		r, err := redact.New(c.patterns...)
		if err == nil || r != nil {
			t.Errorf("New(%s) = %v, %v, want an error", c.name, r, err)
			continue
		}
		if code, field := agenttrail.ErrorCode(err), agenttrail.ErrorField(err); code != agenttrail.EINVALID || field != c.field {
			t.Errorf("New(%s) error = %v (code %q), want field %q", c.name, err, code, c.field)
		}
	}
}

func TestRedactorConcurrentUse(t *testing.T) {
	r := newRedactor(t, redact.Pattern{Kind: "acme_key", Regexp: `acme_[0-9a-f]{16}`})
	cases := redactCases()
	errs := make(chan string, len(cases)*4)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range cases {
				e := agenttrail.Event{Description: c.text, Metadata: json.RawMessage(`{"password":"x"}`)}
				r.Event(&e)
				if e.Description != c.want {
					errs <- fmt.Sprintf("Event(%q).Description = %q, want %q", c.text, e.Description, c.want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

func TestRedactorCleanPathDoesNotAllocate(t *testing.T) {
	r := newRedactor(t)
	e := benchEvent(false)
	allocs := testing.AllocsPerRun(100, func() {
		x := e
		r.Event(&x)
	})
	if allocs != 0 {
		t.Errorf("Event(clean event) allocates %v times, want 0", allocs)
	}
}

// benchEvent returns a typical shell event of about 500 bytes; dirty ones
// carry a token in the command and a password in the environment.
func benchEvent(dirty bool) agenttrail.Event {
	cmd, env := "git", map[string]string{"PATH": "/usr/bin", "HOME": "/home/agent"}
	if dirty {
		cmd = "git -c http.extraHeader='Authorization: Bearer " + bearerToken + "'"
		env["PGPASSWORD"] = "hunter2"
	}
	meta, _ := json.Marshal(map[string]any{
		"shell": map[string]any{
			"command": cmd, "args": []string{"status", "--short"}, "cwd": "/home/agent/work/release-2024",
			"exit_code": 0, "stdout": "M go.mod\nM server/routes.go\n?? capture/mcp/\n", "stderr": "",
			"env": env,
		},
		"llm": map[string]any{"provider": "anthropic", "model": "claude-sonnet", "input_tokens": 1200, "output_tokens": 350},
	})
	return agenttrail.Event{
		ActorType: agenttrail.ActorAgent, ActorID: "agent-7", ActorName: "Release bot",
		Source: agenttrail.SourceShell, Action: "shell_exec", ResourceType: "command", ResourceID: "/usr/bin/git",
		Result: agenttrail.ResultSuccess, Description: "ran git status in the release workspace", Metadata: meta,
	}
}

func BenchmarkRedactEvent(b *testing.B) {
	r := newRedactor(b)
	for _, bc := range []struct {
		name  string
		dirty bool
	}{{"clean", false}, {"dirty", true}} {
		e := benchEvent(bc.dirty)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(e.Metadata) + len(e.Description) + len(e.Action) + len(e.ResourceID) + len(e.ActorName)))
			for b.Loop() {
				x := e
				r.Event(&x)
			}
		})
	}
}

func TestLoadPatterns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "redact.json")
	if err := os.WriteFile(path, []byte(`[{"kind": "ticket", "regexp": "TCK-[0-9]{6}"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	ps, err := redact.LoadPatterns(path)
	if err != nil || len(ps) != 1 || ps[0] != (redact.Pattern{Kind: "ticket", Regexp: "TCK-[0-9]{6}"}) {
		t.Fatalf("LoadPatterns = %+v, %v", ps, err)
	}
	if err := os.WriteFile(path, []byte(`{"kind": "ticket"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := redact.LoadPatterns(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadPatterns(an object) = %v, want an error naming the file", err)
	}
	if _, err := redact.LoadPatterns(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Errorf("LoadPatterns(missing file) = nil error")
	}
}
