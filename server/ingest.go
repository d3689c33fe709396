package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// postEvents is POST /v1/events. The body's shape is told by its content,
// not its Content-Type: '[' starts an array, '{' one object or NDJSON, so
// curl's default form type and application/x-ndjson both work.
func (s *Server) postEvents(r *http.Request) (any, error) {
	if s.noIngest != "" {
		return nil, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "%s", s.noIngest)
	}
	buf, held, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	// The decoded events take about as much memory as the body: the
	// reservation lasts until they are written.
	defer s.bodies.release(held)
	d, err := decodeBody(*buf, s.limits)
	s.putBody(buf) // decoded events copy what they keep
	if err != nil {
		return nil, err
	}

	// The events that decoded go to the write path; at[k] is the index in
	// the request of the k-th of them (nil when every event decoded).
	events, at := d.events, []int(nil)
	if len(d.rejected) > 0 {
		events, at = d.events[:0], make([]int, 0, len(d.events)-len(d.rejected))
		next := 0 // the next decoding rejection, by position in d.rejected
		for i := range d.events {
			if next < len(d.rejected) && d.rejected[next].Index == i {
				next++
				continue
			}
			events = append(events, d.events[i]) // in place: writes never pass reads
			at = append(at, i)
		}
	}
	for _, reason := range d.reasons {
		s.metrics.rejected.WithLabelValues(reason).Inc()
	}
	res, err := s.ingest.Write(r.Context(), events, scopeOf(principalOf(r.Context())))
	if err != nil {
		return nil, err
	}
	// Both lists of rejections are in request order: merge them.
	rejected := make([]wire.Rejection, 0, len(d.rejected)+len(res.Rejected))
	next := 0
	for _, rj := range res.Rejected {
		i := rj.Index
		if at != nil {
			i = at[i]
		}
		for next < len(d.rejected) && d.rejected[next].Index < i {
			rejected = append(rejected, d.rejected[next])
			next++
		}
		rejected = append(rejected, wire.Rejection{Index: i, Error: agenttrail.ErrorMessage(rj.Err)})
		s.metrics.rejected.WithLabelValues(rejectReason(rj.Err)).Inc()
	}
	rejected = append(rejected, d.rejected[next:]...)
	return wire.IngestResult{Accepted: res.Accepted(), Duplicates: res.Duplicates, Spooled: res.Spooled, Rejected: rejected}, nil
}

// rejectReason is the metrics reason of an event the write path refused.
func rejectReason(err error) string {
	if agenttrail.ErrorCode(err) == agenttrail.EFORBIDDEN {
		return rejectForbidden
	}
	return rejectInvalid
}

// readBody reads the request body into a pooled buffer, enforcing
// MaxRequestBytes (the route's http.MaxBytesReader also cuts the connection
// of a client that keeps sending). Memory follows the bytes actually
// received, never the Content-Length a client declares: the buffer grows a
// chunk at a time, and each chunk is reserved from the server-wide body
// budget before it is read, so many slow or lying clients cost at most
// that budget and are then answered 503 with Retry-After. The caller
// returns the buffer with putBody and the reservation (held) with
// s.bodies.release once it no longer needs what it decoded.
func (s *Server) readBody(r *http.Request) (buf *[]byte, held int64, err error) {
	max := int64(s.limits.MaxRequestBytes)
	if r.ContentLength > max {
		return nil, 0, bodyLeft{tooLargeBody(max)}
	}
	buf, _ = s.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	b := (*buf)[:0]
	for {
		if int64(len(b))+bodyChunk > held {
			if !s.bodies.acquire(bodyChunk) {
				s.bodies.release(held)
				*buf = b
				s.putBody(buf)
				return nil, 0, bodyLeft{agenttrail.Errorf(agenttrail.EUNAVAILABLE, "the server is reading too many request bodies at once; retry after the Retry-After delay")}
			}
			held += bodyChunk
		}
		if cap(b)-len(b) < bodyChunk {
			b = slices.Grow(b, bodyChunk)
		}
		var n int
		n, err = r.Body.Read(b[len(b):min(cap(b), len(b)+bodyChunk)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	*buf = b
	if err == io.EOF {
		return buf, held, nil
	}
	s.bodies.release(held)
	s.putBody(buf)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, 0, bodyLeft{tooLargeBody(max)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, 0, agenttrail.Invalid("body", "ended before Content-Length bytes")
	}
	return nil, 0, agenttrail.Invalid("body", "could not be read: %v", err)
}

// putBody returns a body buffer to the pool, unless it is so large that
// keeping it would pin memory for the rare request that needed it.
func (s *Server) putBody(buf *[]byte) {
	if cap(*buf) > 4<<20 {
		return
	}
	*buf = (*buf)[:0]
	s.bufs.Put(buf)
}

func tooLargeBody(max int64) error {
	return &agenttrail.Error{Code: agenttrail.ETOOLARGE, Field: "body", Message: fmt.Sprintf("is over the limit of %d bytes; split it", max)}
}

// bodyLeft marks an error answered before the request body was read to its
// end: the connection is closed after the answer, so the server neither
// waits for the rest of a body it refused nor keeps it alive.
type bodyLeft struct{ error }

func (b bodyLeft) Unwrap() error { return b.error }
