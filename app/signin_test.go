package app

import (
	"regexp"
	"testing"
)

// TestFirstStartSignInLink checks that a server that created its admin
// token offers a one-time console link, and one that found tokens does not.
func TestFirstStartSignInLink(t *testing.T) {
	dir := t.TempDir()
	m, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	link := m.SignInURL()
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(m.URL()) + `/#login=[0-9a-f]{32}$`).MatchString(link) {
		t.Errorf("first start: SignInURL() = %q, want %s/#login=CODE", link, m.URL())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err = Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if link := m.SignInURL(); link != "" {
		t.Errorf("second start: SignInURL() = %q, want none", link)
	}
}
