package capture

import (
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

func TestResultOf(t *testing.T) {
	for _, tt := range []struct {
		status int
		want   agenttrail.Result
	}{
		{200, agenttrail.ResultSuccess}, {101, agenttrail.ResultSuccess}, {304, agenttrail.ResultSuccess}, {0, agenttrail.ResultSuccess},
		{401, agenttrail.ResultDenied}, {403, agenttrail.ResultDenied},
		{400, agenttrail.ResultFailure}, {404, agenttrail.ResultFailure}, {407, agenttrail.ResultFailure},
		{409, agenttrail.ResultFailure}, {429, agenttrail.ResultFailure}, {500, agenttrail.ResultFailure}, {503, agenttrail.ResultFailure},
	} {
		if got := ResultOf(tt.status); got != tt.want {
			t.Errorf("ResultOf(%d) = %s, want %s", tt.status, got, tt.want)
		}
	}
}

func TestProxiedResult(t *testing.T) {
	for _, tt := range []struct {
		broken, refused bool
		status          int
		want            agenttrail.Result
	}{
		{true, true, 200, agenttrail.ResultError}, {true, false, 0, agenttrail.ResultError},
		{false, true, 200, agenttrail.ResultDenied}, {false, true, 0, agenttrail.ResultDenied},
		{false, false, 0, agenttrail.ResultFailure},
		{false, false, 200, agenttrail.ResultSuccess}, {false, false, 403, agenttrail.ResultDenied}, {false, false, 502, agenttrail.ResultFailure},
	} {
		if got := ProxiedResult(tt.broken, tt.refused, tt.status); got != tt.want {
			t.Errorf("ProxiedResult(%t, %t, %d) = %s, want %s", tt.broken, tt.refused, tt.status, got, tt.want)
		}
	}
}

func TestBytesAndTook(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 KB", 4200: "4.2 KB", 1_300_000: "1.3 MB", 2_500_000_000: "2.5 GB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{85 * time.Millisecond: "85 ms", 1200 * time.Millisecond: "1.2 s", 200 * time.Second: "3m20s"} {
		if got := Took(d); got != want {
			t.Errorf("Took(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestShorten(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"}, {"exactly10!", 10, "exactly10!"}, {"abcdefghijkl", 10, "abcdefg…"}, {"ééééé", 8, "éé…"},
	} {
		if got := Shorten(tt.in, tt.n); got != tt.want || len(got) > tt.n {
			t.Errorf("Shorten(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
