package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerHeaders(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/", "/events", "/overview", "/cost", "/gaps", "/tokens", "/ui/app.js", "/ui/app.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, rec.Code)
			continue
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		} {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	types := map[string]string{"/events": "text/html", "/ui/app.js": "text/javascript", "/ui/app.css": "text/css"}
	for path, want := range types {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, want) {
			t.Errorf("GET %s: Content-Type %q, want %s", path, got, want)
		}
	}
	for _, path := range []string{"/ui/", "/ui/nope.js", "/ui/../web.go"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code == http.StatusOK {
			t.Errorf("GET %s = 200, want an error", path)
		}
	}
}

// TestCSPDirectives pins what the policy must say: only the console's own
// files, no inline script or style, no framing.
func TestCSPDirectives(t *testing.T) {
	for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, d) {
			t.Errorf("CSP %q lacks %q", ContentSecurityPolicy, d)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("CSP %q allows something unsafe", ContentSecurityPolicy)
	}
}

// TestNoHTMLParsing checks the console never parses strings as HTML: event
// data reaches the DOM only as text (dom.js). A new innerHTML fails here.
func TestNoHTMLParsing(t *testing.T) {
	bad := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|createContextualFragment|DOMParser|srcdoc`)
	inline := regexp.MustCompile(`<script>|<style>|\sstyle="|\son[a-z]+=`)
	err := fs.WalkDir(files, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".js") {
			if m := bad.Find(b); m != nil {
				t.Errorf("%s uses %s", path, m)
			}
		}
		if strings.HasSuffix(path, ".html") {
			if m := inline.Find(b); m != nil {
				t.Errorf("%s has inline %q, which the CSP refuses", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
