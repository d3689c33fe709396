package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// syslog sends RFC 5424 messages over TCP with RFC 6587 octet counting
// ("LEN SP MSG"), or over TLS as RFC 5425 says (tls://, port 6514 by
// default). Each event is one message:
//
//	<PRI>1 TIME HOST agenttrail - SOURCE [agenttrail@32473 id="…" seq="…" org="…"] PAYLOAD
//
// PRI is facility 13 (log audit) with a severity from the result; the
// structured data carries the event id, so a receiver can deduplicate;
// PAYLOAD is the event in the sink's format (cef, json or ocsf), one line.
// (32473 is the enterprise number RFC 5612 reserves for documentation:
// agenttrail has none of its own.)
//
// Syslog over TCP has no acknowledgement: a write the kernel took may still
// be lost when the receiver dies. So the messages written in the last
// resendWindow are kept, and after a broken connection they are sent again
// first, in order, before anything new: at least once, with the id to
// drop what came twice.
type syslog struct {
	scheme, addr string
	host         string
	tls          *tls.Config
	conn         net.Conn
	recent       []sent
	now          func() time.Time
}

type sent struct {
	at   time.Time
	data []byte
}

// resendWindow is how long written messages are kept for a resend after
// the connection breaks; resendBytes bounds them.
const (
	resendWindow = 5 * time.Second
	resendBytes  = 16 << 20
	// syslogEnterprise is the SD-ID's enterprise number (RFC 5612's).
	syslogEnterprise = "32473"
)

func newSyslog(c Config) (*syslog, error) {
	scheme, addr, err := syslogAddress(c.Address)
	if err != nil {
		return nil, err
	}
	s := &syslog{scheme: scheme, addr: addr, host: c.Hostname, now: time.Now}
	if s.host == "" {
		if s.host, err = os.Hostname(); err != nil || s.host == "" {
			s.host = "-"
		}
	}
	if scheme == "tls" {
		if s.tls, err = tlsConfig(c); err != nil {
			return nil, err
		}
		s.tls.ServerName, _, _ = net.SplitHostPort(addr)
	}
	return s, nil
}

func (s *syslog) dial(ctx context.Context) error {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if s.tls != nil {
		conn, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return err
	}
	s.conn = conn
	// What the broken connection may have lost goes again, first.
	for _, m := range s.recent {
		if err := s.write(m.data); err != nil {
			return err
		}
	}
	return nil
}

func (s *syslog) write(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(httpTimeout))
	_, err := s.conn.Write(b)
	return err
}

// alive reports whether the receiver has not closed the connection: a
// syslog receiver never writes, so anything but a timeout on a short read
// means the connection is gone.
func (s *syslog) alive() bool {
	_ = s.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var one [1]byte
	_, err := s.conn.Read(one[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *syslog) Deliver(ctx context.Context, b *Batch) (*Result, error) {
	if s.conn != nil && !s.alive() {
		s.drop()
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			s.drop()
			return nil, &Unavailable{Err: fmt.Errorf("syslog %s: %w", s.addr, err)}
		}
	}
	var buf bytes.Buffer
	for i := range b.Events {
		msg := s.message(&b.Events[i], b.Payloads[i])
		buf.WriteString(strconv.Itoa(len(msg)))
		buf.WriteByte(' ')
		buf.Write(msg)
	}
	data := buf.Bytes()
	if err := s.write(data); err != nil {
		s.drop()
		return nil, &Unavailable{Err: fmt.Errorf("syslog %s: %w", s.addr, err)}
	}
	now := s.now()
	s.recent = append(s.recent, sent{at: now, data: data})
	total := 0
	for _, m := range s.recent {
		total += len(m.data)
	}
	for len(s.recent) > 0 && (now.Sub(s.recent[0].at) > resendWindow || total > resendBytes) {
		total -= len(s.recent[0].data)
		s.recent = s.recent[1:]
	}
	return nil, nil
}

// message is one RFC 5424 message (without the octet count).
func (s *syslog) message(e *agenttrail.Event, payload []byte) []byte {
	b := make([]byte, 0, len(payload)+256)
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(13*8+syslogSeverity(e.Result)), 10)
	b = append(b, ">1 "...)
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	b = append(b, headerField(s.host, 255)...)
	b = append(b, " agenttrail - "...)
	b = append(b, headerField(e.Source, 32)...)
	b = append(b, " [agenttrail@"+syslogEnterprise+" id=\""...)
	b = sdValue(b, e.ID)
	b = append(b, "\" seq=\""...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, "\" org=\""...)
	b = sdValue(b, e.Org)
	b = append(b, "\"] "...)
	return append(b, bytes.TrimRight(payload, "\r\n")...)
}

// syslogSeverity maps a result to an RFC 5424 severity: success 6
// (informational), denied 5 (notice), failure 4 (warning), error 3.
func syslogSeverity(r agenttrail.Result) int {
	switch r {
	case agenttrail.ResultDenied:
		return 5
	case agenttrail.ResultFailure:
		return 4
	case agenttrail.ResultError:
		return 3
	}
	return 6
}

// headerField is a header field: printable US-ASCII without spaces, at most
// n bytes, "-" when empty.
func headerField(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return '_'
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	if s == "" {
		return "-"
	}
	return s
}

// sdValue appends a PARAM-VALUE with '"', '\' and ']' escaped (RFC 5424
// 6.3.3).
func sdValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
}

func (s *syslog) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *syslog) Close() error {
	s.drop()
	return nil
}
