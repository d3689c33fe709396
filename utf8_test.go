package agenttrail

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestValidateRepairsMetadataText: invalid UTF-8 in metadata keys and
// values, and lone UTF-16 surrogates, are repaired to U+FFFD as the
// decoder repairs every string field, so the stored metadata is valid
// UTF-8 JSON; valid text and numbers are kept as they were.
func TestValidateRepairsMetadataText(t *testing.T) {
	now := time.Now()
	for _, meta := range []string{
		"{\"k\xff\":\"v\xfe\",\"n\":12345678901234567890}",
		`{"lone":"\ud800","pair":"\ud83d\ude00","n":1.50}`,
		"{\"x\":{\"deep\xc3\":[\"\xed\xa0\x80\"]}}",
	} {
		e := Event{ID: "x", Time: now, ActorType: ActorAgent, ActorID: "a", Source: "shell", Action: "a", Result: ResultSuccess, Org: "o",
			Metadata: json.RawMessage(meta)}
		if err := e.Validate(now); err != nil {
			t.Fatalf("Validate(metadata %q) = %v, want it repaired", meta, err)
		}
		got := string(e.Metadata)
		if !utf8.ValidString(got) || strings.Contains(got, `\ud800`) || !json.Valid(e.Metadata) {
			t.Errorf("metadata %q stored as %q, want valid UTF-8 JSON without lone surrogates", meta, got)
		}
		if !strings.Contains(got, "\uFFFD") {
			t.Errorf("metadata %q stored as %q, want U+FFFD where the bad text was", meta, got)
		}
		if strings.Contains(meta, "12345678901234567890") && !strings.Contains(got, "12345678901234567890") {
			t.Errorf("metadata %q stored as %q, want numbers kept as written", meta, got)
		}
	}
}
