// Package integrity makes the trail tamper-evident: per org, an RFC 6962
// Merkle tree over the org's events in commit order, whose leaves the
// stores append in the same transaction as the events; signed checkpoints
// in the C2SP tlog-checkpoint format; inclusion and consistency proofs; and
// bundles that an auditor verifies offline (docs/architecture.md,
// "Integrity"). Tree hashes, stored hashes and proofs are
// golang.org/x/mod/sumdb/tlog's, signatures golang.org/x/mod/sumdb/note's.
package integrity

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"time"

	"github.com/agenttrail/agenttrail"
	"golang.org/x/mod/sumdb/tlog"
)

// EncodingVersion is the first byte of every canonical encoding. A change
// to the encoding takes a new version, so leaves of either can be told
// apart.
const EncodingVersion = 1

// AppendEvent appends the canonical encoding of the stored event e to b
// and returns the extended slice. The encoding (version 1) is the version
// byte, then every field of Event except LogIndex (the leaf's position,
// which the tree itself proves), in this order: id, org, seq, time,
// received_at, duration_ms, actor_type, actor_id, actor_name, source,
// action, resource_type, resource_id, result, status_code, description,
// metadata, project, producer_id, producer_seq, trace_id, span_id,
// parent_span_id, session_id. A string is its length as
// an unsigned varint then its bytes; an integer is 8 bytes big-endian
// (two's complement); a float its IEEE 754 bits likewise; a time its Unix
// seconds (8 bytes) then nanoseconds (4 bytes); metadata is a string
// holding its canonical JSON (CanonicalJSON), empty when absent.
// TestEncodingCoversEveryField fails when Event gains a field this
// encoding leaves out.
func AppendEvent(b []byte, e *agenttrail.Event) []byte {
	b = append(b, EncodingVersion)
	b = appendString(b, e.ID)
	b = appendString(b, e.Org)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = appendTime(b, e.Time)
	b = appendTime(b, e.ReceivedAt)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.DurationMS))
	b = appendString(b, string(e.ActorType))
	b = appendString(b, e.ActorID)
	b = appendString(b, e.ActorName)
	b = appendString(b, e.Source)
	b = appendString(b, e.Action)
	b = appendString(b, e.ResourceType)
	b = appendString(b, e.ResourceID)
	b = appendString(b, string(e.Result))
	b = binary.BigEndian.AppendUint64(b, uint64(int64(e.StatusCode)))
	b = appendString(b, e.Description)
	b = appendBytes(b, CanonicalJSON(e.Metadata))
	b = appendString(b, e.Project)
	b = appendString(b, e.ProducerID)
	b = binary.BigEndian.AppendUint64(b, uint64(e.ProducerSeq))
	b = appendString(b, e.TraceID)
	b = appendString(b, e.SpanID)
	b = appendString(b, e.ParentSpanID)
	b = appendString(b, e.SessionID)
	return b
}

// LeafHash returns the tree's leaf hash of the stored event e: the RFC 6962
// record hash of its canonical encoding. buf is scratch space that may be
// nil; it returns it, grown, for the next call.
func LeafHash(e *agenttrail.Event, buf []byte) (tlog.Hash, []byte) {
	buf = AppendEvent(buf[:0], e)
	return tlog.RecordHash(buf), buf
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// CanonicalJSON returns metadata as the leaf encodes it: without
// insignificant whitespace (json.Compact), and with the escapes
// encoding/json adds for HTML (\u003c, \u003e, \u0026, \u2028, \u2029)
// written as the characters they stand for. Every JSON encoder in the
// path from the store to an auditor (the API, an export, a bundle) keeps
// this form's meaning while changing at most those, so a verifier
// recomputes the same leaf from any of them. Invalid JSON is returned as
// it is.
func CanonicalJSON(m json.RawMessage) []byte {
	if len(m) == 0 {
		return nil
	}
	if canonical(m) {
		return m
	}
	var c bytes.Buffer
	c.Grow(len(m))
	if err := json.Compact(&c, m); err != nil {
		return m
	}
	b := c.Bytes()
	if !bytes.Contains(b, []byte(`\u`)) {
		return b
	}
	return unescapeHTML(b)
}

// canonical reports whether JSON text m is already in CanonicalJSON's
// form, as metadata encoded by encoding/json without HTML escaping is: no
// whitespace outside strings and no \u escape. It is the fast path of the
// write path, one pass without allocating.
func canonical(m []byte) bool {
	in := false
	for i := 0; i < len(m); i++ {
		c := m[i]
		if in {
			switch c {
			case '\\':
				if i+1 < len(m) && m[i+1] == 'u' {
					return false
				}
				i++
			case '"':
				in = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			return false
		case '"':
			in = true
		}
	}
	return true
}

// unescapeHTML rewrites the HTML escapes of compact JSON b as characters.
func unescapeHTML(b []byte) []byte {
	out := make([]byte, 0, len(b))
	in := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			in = !in
		case c == '\\' && in && i+1 < len(b):
			if b[i+1] == 'u' && i+5 < len(b) {
				if r, ok := htmlEscape(b[i+2 : i+6]); ok {
					out = append(out, r...)
					i += 5
					continue
				}
			}
			out = append(out, c, b[i+1])
			i++
			continue
		}
		out = append(out, c)
	}
	return out
}

func htmlEscape(hex []byte) (string, bool) {
	switch string(bytes.ToLower(hex)) {
	case "003c":
		return "<", true
	case "003e":
		return ">", true
	case "0026":
		return "&", true
	case "2028":
		return "\u2028", true
	case "2029":
		return "\u2029", true
	}
	return "", false
}
