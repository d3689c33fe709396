package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// postEvents is POST /v1/events. The body's shape is told by its content,
// not its Content-Type: '[' starts an array, '{' one object or NDJSON, so
// curl's default form type and application/x-ndjson both work.
func (s *Server) postEvents(r *http.Request) (any, error) {
	buf, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
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
// of a client that keeps sending). The caller returns the buffer with
// putBody.
func (s *Server) readBody(r *http.Request) (*[]byte, error) {
	max := int64(s.limits.MaxRequestBytes)
	if r.ContentLength > max {
		return nil, tooLargeBody(max)
	}
	buf, _ := s.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	b := bytes.NewBuffer((*buf)[:0])
	if r.ContentLength > 0 {
		b.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := b.ReadFrom(r.Body)
	*buf = b.Bytes()
	if err != nil {
		s.putBody(buf)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLargeBody(max)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, agenttrail.Invalid("body", "ended before Content-Length bytes")
		}
		return nil, agenttrail.Invalid("body", "could not be read: %v", err)
	}
	return buf, nil
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
