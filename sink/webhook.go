package sink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// webhook POSTs each batch as NDJSON (or the sink's format, one event a
// line). With a secret, X-Agenttrail-Signature is
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>", so the
// receiver can check the sender and reject replays of old requests;
// Idempotency-Key is "<sink>-<first seq>-<last seq>", the same when a
// batch is sent again.
type webhook struct {
	url    string
	secret []byte
	hc     *http.Client
	now    func() time.Time
}

func newWebhook(c Config) (*webhook, error) {
	secret, err := c.Secret()
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(c)
	if err != nil {
		return nil, err
	}
	return &webhook{url: c.URL, secret: []byte(secret), hc: hc, now: time.Now}, nil
}

// Sign returns the X-Agenttrail-Signature of body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *webhook) Deliver(ctx context.Context, b *Batch) (*Result, error) {
	body := b.Body()
	h := http.Header{}
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Idempotency-Key", b.Key())
	h.Set("User-Agent", "agenttrail-sink")
	if len(w.secret) > 0 {
		h.Set("X-Agenttrail-Signature", Sign(w.secret, w.now(), body))
	}
	status, rh, rb, err := post(ctx, w.hc, w.url, body, h)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, statusError(status, rh, rb)
	}
	return nil, nil
}

func (w *webhook) Close() error {
	w.hc.CloseIdleConnections()
	return nil
}
