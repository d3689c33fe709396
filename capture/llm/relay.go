package llm

import (
	"errors"
	"io"
	"net/http"
)

// relayStream forwards an event stream one event at a time, flushing each
// to the client as soon as its last line has arrived: nothing is held back
// waiting for more input, so the proxy adds no time to the first token.
// Each event is metered before it is forwarded because the meter decides
// whether the client sees it.
func (p *Proxy) relayStream(w http.ResponseWriter, body io.Reader, c *call) {
	rc := http.NewResponseController(w)
	flush := func() bool {
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			c.clientGone = true
			return false
		}
		return true
	}
	// The status line and headers go out at once: SDKs wait for them before
	// they start reading events.
	if !flush() {
		return
	}
	sr := newSSEReader(body, copyBufSize)
	m := c.ep.meter
	for {
		ev, err := sr.Next()
		if ev != nil {
			if m == nil || m.event(c, ev) {
				if _, werr := w.Write(ev.Raw); werr != nil {
					c.clientGone = true
					return
				}
				if !flush() {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.cut = err
			}
			return
		}
	}
}

// relayBody forwards a response body as it arrives and keeps a copy of a
// metered one (up to maxCapture) to read its usage at the end.
func (p *Proxy) relayBody(w http.ResponseWriter, body io.Reader, c *call) {
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	var captured []byte
	over := false
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if c.ep.meter != nil && !over {
				if len(captured)+n > maxCapture {
					over, captured = true, nil
				} else {
					captured = append(captured, buf[:n]...)
				}
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				c.clientGone = true
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.cut = err
				return
			}
			break
		}
	}
	if c.ep.meter != nil && !over {
		c.ep.meter.body(c, captured)
	}
}
