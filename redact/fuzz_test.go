package redact_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/redact"
)

// plantedSecrets are secrets in the context that makes them one: a seed
// input holds each between spaces, and wherever the fuzzer leaves one so,
// String must remove that occurrence.
func plantedSecrets() []struct{ ctx, secret string } {
	return []struct{ ctx, secret string }{
		{awsKeyID, awsKeyID},
		{"aws_secret_access_key=" + awsSecret, awsSecret},
		{"Authorization: Bearer " + bearerToken, bearerToken},
		{"Basic " + basicCreds, basicCreds},
		{openaiKey, openaiKey},
		{openaiLegacy, openaiLegacy},
		{anthropicKey, anthropicKey},
		{githubToken, githubToken},
		{githubPAT, githubPAT},
		{slackToken, slackToken},
		{"https://hooks.slack.com/" + slackHook, slackHook},
		{stripeKey, stripeKey},
		{googleKey, googleKey},
		{jwtToken, jwtToken},
		{privateKey, "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy"},
		{"postgres://app:s3cr3t-pw@db.internal:5432/app", "s3cr3t-pw"},
		{"PGPASSWORD=hunter2xyz", "hunter2xyz"},
		{"--password hunter3xyz", "hunter3xyz"},
		{`"api_key": "k3y-v4lue-99"`, "k3y-v4lue-99"},
	}
}

func FuzzRedact(f *testing.F) {
	r, err := redact.New()
	if err != nil {
		f.Fatal(err)
	}
	planted := plantedSecrets()
	var all []string
	for _, p := range planted {
		f.Add("run " + p.ctx + " done")
		all = append(all, p.ctx)
	}
	f.Add(strings.Join(all, " "))
	f.Add("Bearer Bearer " + bearerToken + " [REDACTED:bearer] password=[REDACTED:x]y")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		out := r.String(s)
		if again := r.String(out); again != out {
			t.Fatalf("String(%q) = %q, but String of that = %q (not idempotent)", s, out, again)
		}
		checkMetadataScan(t, r, s)
		for _, p := range planted {
			n := strings.Count(s, " "+p.ctx+" ")
			if n == 0 {
				continue
			}
			if in, left := strings.Count(s, p.secret), strings.Count(out, p.secret); left > in-n {
				t.Fatalf("String(%q) = %q keeps %q (%d of %d, %d in context)", s, out, p.secret, left, in, n)
			}
		}
	})
}

// checkMetadataScan checks that the scan of raw metadata sees whatever the
// walk of its decoded strings and keys would redact: s as a value and as a
// key must come out as it does from the same metadata forced down the
// decoding path by a secret elsewhere.
func checkMetadataScan(t *testing.T, r *redact.Redactor, s string) {
	t.Helper()
	const force = "\x00force"
	if s == force || s == "list" {
		return
	}
	for _, m := range []map[string]any{{"value": s}, {s: "v", "list": []string{"x", s}}} {
		plain, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%v) error = %v", m, err)
		}
		m[force] = "password=x"
		forced, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%v) error = %v", m, err)
		}
		a, b := agenttrail.Event{Metadata: plain}, agenttrail.Event{Metadata: forced}
		r.Event(&a)
		r.Event(&b)
		var got, want map[string]any
		if json.Unmarshal(a.Metadata, &got) != nil || json.Unmarshal(b.Metadata, &want) != nil {
			t.Fatalf("Event(%s), Event(%s) = %s, %s: not JSON", plain, forced, a.Metadata, b.Metadata)
		}
		delete(want, force)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Event(metadata %s) = %s, want %v as when it is decoded", plain, a.Metadata, want)
		}
	}
}
