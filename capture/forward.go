package capture

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
)

// Transport returns a copy of http.DefaultTransport that keeps up to idle
// connections to each upstream host open, so concurrent calls of the
// agents behind a proxy reuse connections instead of each dialing one.
func Transport(idle int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idle
	return t
}

// ReverseProxy returns rp as every HTTP surface forwards with it: the
// reverse proxy's own failures (a client gone mid-copy) are logged to log at
// warn level, where the surface's other warnings go.
func ReverseProxy(rp httputil.ReverseProxy, log *slog.Logger) *httputil.ReverseProxy {
	rp.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	return &rp
}
