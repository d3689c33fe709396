package shell

import (
	"context"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestRedactArgs(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"curl", "-u", "bob:pw123", "http://h/"}, []string{"curl", "-u", "bob:" + markUserPass, "http://h/"}},
		{[]string{"curl", "--user=bob:pw123", "http://h/"}, []string{"curl", "--user=bob:" + markUserPass, "http://h/"}},
		{[]string{"curl", "-ubob:pw123", "http://h/"}, []string{"curl", "-ubob:" + markUserPass, "http://h/"}},
		{[]string{"/usr/bin/curl", "--proxy-user", "p:x:y", "h"}, []string{"/usr/bin/curl", "--proxy-user", "p:" + markUserPass, "h"}},
		{[]string{"curl", "-u", "bob", "http://h/"}, []string{"curl", "-u", "bob", "http://h/"}}, // curl prompts
		{[]string{"sudo", "-E", "curl", "-u", "a:b", "h"}, []string{"sudo", "-E", "curl", "-u", "a:" + markUserPass, "h"}},
		{[]string{"http", "-a", "bob:pw", "h"}, []string{"http", "-a", "bob:" + markUserPass, "h"}},
		{[]string{"docker", "run", "-u", "1000:1000", "img"}, []string{"docker", "run", "-u", "1000:1000", "img"}},
		{[]string{"mysql", "-u", "root", "-phunter2", "db"}, []string{"mysql", "-u", "root", "-p" + markPassword, "db"}},
		{[]string{"mysql", "-u", "root", "-p", "db"}, []string{"mysql", "-u", "root", "-p", "db"}}, // prompts; db is a database
		{[]string{"mkdir", "-pv", "dir"}, []string{"mkdir", "-pv", "dir"}},
		{[]string{"vault", "login", "--token", "s.abc", "-x"}, []string{"vault", "login", "--token", markPassword, "-x"}},
		{[]string{"tool", "--client-secret", "xyz", "--verbose"}, []string{"tool", "--client-secret", markPassword, "--verbose"}},
		{[]string{"tool", "--password", "--verbose"}, []string{"tool", "--password", "--verbose"}},
		{[]string{"sshpass", "-p", "s3cret", "ssh", "h"}, []string{"sshpass", "-p", markPassword, "ssh", "h"}},
		{[]string{"sh", "-c", "curl -s -u 'bob:pw 9' http://h/ | jq ."}, []string{"sh", "-c", "curl -s -u 'bob:" + markUserPass + "' http://h/ | jq ."}},
		{[]string{"bash", "-c", "mysql -phunter2 -e 'select 1'; echo done"}, []string{"bash", "-c", "mysql -p" + markPassword + " -e 'select 1'; echo done"}},
	}
	for _, tt := range tests {
		if got := redactArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("redactArgs(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := map[string][]string{
		`a b  c`:                  {"a", "b", "c"},
		`curl -u 'bob:p w' "x y"`: {"curl", "-u", "bob:p w", "x y"},
		`a;b|c&&d (e)`:            {"a", "b", "c", "d", "e"},
		`echo "a \"q\" \$x" b\ c`: {"echo", `a "q" $x`, "b c"},
		`x='' y`:                  {"x=", "y"},
		`unterminated 'quote`:     {"unterminated", "quote"},
	}
	for in, want := range tests {
		if got := splitWords(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"ls", "-la", "/tmp"}, "ls -la /tmp"},
		{[]string{"sh", "-c", "echo hi; exit 3"}, "sh -c 'echo hi; exit 3'"},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"echo", ""}, "echo ''"},
		{[]string{"git", "commit", "-m", "a $HOME"}, "git commit -m 'a $HOME'"},
	}
	for _, tt := range tests {
		if got := commandLine(tt.argv); got != tt.want {
			t.Errorf("commandLine(%q) = %q, want %q", tt.argv, got, tt.want)
		}
		if got := splitWords(commandLine(tt.argv)); !reflect.DeepEqual(got, tt.argv) && tt.argv[1] != "" {
			t.Errorf("splitWords(commandLine(%q)) = %q: not read back as the same words", tt.argv, got)
		}
	}
}

// TestSecretsNeverRecorded runs real commands with credentials in their
// command lines, environment assignments and output, and checks none of
// them is in the recorded event.
func TestSecretsNeverRecorded(t *testing.T) {
	mysql := script(t, "mysql", "exit 0") // a stand-in named mysql: only its arguments matter
	tests := []struct {
		argv   []string
		secret string
	}{
		{[]string{mysql, "--password=hunter2", "-u", "root"}, "hunter2"},
		{[]string{mysql, "--password", "hunter2", "-u", "root"}, "hunter2"},
		{[]string{mysql, "-u", "root", "-phunter2", "shop"}, "hunter2"},
		{[]string{"curl", "-sS", "-u", "user:s3cretpw", "http://127.0.0.1:1/"}, "s3cretpw"},
		{[]string{"curl", "-sS", "--user", "user:s3cretpw", "http://127.0.0.1:1/"}, "s3cretpw"},
		{[]string{"sh", "-c", "export TOKEN=tok-9f8e7d6c; echo exported"}, "tok-9f8e7d6c"},
		{[]string{"env", "GITHUB_TOKEN=ghp_" + strings.Repeat("a1B2", 9), "true"}, "a1B2a1B2"},
		{[]string{"sh", "-c", "curl -s -u bob:pw-xyz123 http://127.0.0.1:1/ ; true"}, "pw-xyz123"},
		{[]string{"sh", "-c", "echo password=hunter2; echo api_key=k-abcdef1234 >&2"}, "hunter2"},
		{[]string{"sh", "-c", "echo https://bob:hunter2@example.com/x"}, "hunter2"},
		{[]string{"psql", "postgres://app:hunter2@127.0.0.1:1/db", "-c", "select 1"}, "hunter2"},
	}
	for _, tt := range tests {
		rec := &memRecorder{}
		res, err := Run(context.Background(), rec, agent, exec.Command(tt.argv[0], tt.argv[1:]...), Options{})
		if res == nil {
			t.Fatalf("Run(%q): %v", tt.argv, err)
		}
		e := rec.only(t)
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), tt.secret) {
			t.Errorf("Run(%q): the secret %q reached the event: %s", tt.argv, tt.secret, b)
		}
		if !strings.Contains(e.ResourceID, "[REDACTED:") {
			t.Errorf("Run(%q): resource_id %q has no marker", tt.argv, e.ResourceID)
		}
	}
}
