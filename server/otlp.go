package server

import (
	"compress/gzip"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/otlp"
	"github.com/agenttrail/agenttrail/wire"
)

// postOTLPTraces is POST /v1/otlp/v1/traces: OTLP/HTTP spans, mapped to
// events (package otlp) and written through the one write path.
func (s *Server) postOTLPTraces(w http.ResponseWriter, r *http.Request) {
	s.serveOTLP(w, r, "span", func(body []byte, enc string) (otlp.Batch, func(n int64, msg string) proto.Message, error) {
		req, err := otlp.DecodeTraces(body, enc)
		if err != nil {
			return otlp.Batch{}, nil, err
		}
		return s.otlp.Spans(req), func(n int64, msg string) proto.Message {
			resp := &coltracepb.ExportTraceServiceResponse{}
			if n > 0 {
				resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: n, ErrorMessage: msg}
			}
			return resp
		}, nil
	})
}

// postOTLPLogs is POST /v1/otlp/v1/logs: OTLP/HTTP log records, mapped to
// events (package otlp) and written through the one write path.
func (s *Server) postOTLPLogs(w http.ResponseWriter, r *http.Request) {
	s.serveOTLP(w, r, "log record", func(body []byte, enc string) (otlp.Batch, func(n int64, msg string) proto.Message, error) {
		req, err := otlp.DecodeLogs(body, enc)
		if err != nil {
			return otlp.Batch{}, nil, err
		}
		return s.otlp.Logs(req), func(n int64, msg string) proto.Message {
			resp := &collogspb.ExportLogsServiceResponse{}
			if n > 0 {
				resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: n, ErrorMessage: msg}
			}
			return resp
		}, nil
	})
}

// otlpDecoder decodes and maps one OTLP request body, and builds the
// answer for n rejected items.
type otlpDecoder func(body []byte, encoding string) (otlp.Batch, func(n int64, msg string) proto.Message, error)

// serveOTLP answers one OTLP/HTTP export as the OTLP specification says:
// 200 with an Export*ServiceResponse in the request's encoding, its
// partial_success naming each refused item by index (the others are
// stored); on failure, a google.rpc.Status in that encoding with the HTTP
// status of the error (400 for a body that does not decode, 413, 415, 503
// with Retry-After). The body is read as POST /v1/events reads it: within
// the request limit and the server-wide body budget, after gzip
// decompression when Content-Encoding says gzip.
func (s *Server) serveOTLP(w http.ResponseWriter, r *http.Request, noun string, decode otlpDecoder) {
	enc, err := otlp.Encoding(r.Header.Get("Content-Type"))
	if err != nil {
		s.otlpError(w, r, otlp.ContentTypeProtobuf, http.StatusUnsupportedMediaType, err)
		return
	}
	switch ce := r.Header.Get("Content-Encoding"); ce {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			s.otlpError(w, r, enc, 0, agenttrail.Invalid("body", "is not gzip, as Content-Encoding says: %v", err))
			return
		}
		r.Body = &inflated{r: zr, left: int64(s.limits.MaxRequestBytes)}
	default:
		s.otlpError(w, r, enc, http.StatusUnsupportedMediaType, agenttrail.Invalid("Content-Encoding", "must be gzip or none, not %q", ce))
		return
	}
	buf, held, err := s.readBody(r)
	if err != nil {
		s.otlpError(w, r, enc, 0, err)
		return
	}
	defer s.bodies.release(held)
	batch, answer, err := decode(*buf, enc)
	s.putBody(buf)
	if err != nil {
		s.otlpError(w, r, enc, 0, err)
		return
	}
	res, err := s.ingest.Write(r.Context(), batch.Events, scopeOf(principalOf(r.Context())))
	if err != nil {
		s.otlpError(w, r, enc, 0, err)
		return
	}
	rejected := batch.Rejected
	for _, rj := range batch.Rejected {
		s.metrics.rejected.WithLabelValues(rejectReason(rj.Err)).Inc()
	}
	for _, rj := range res.Rejected {
		rejected = append(rejected, otlp.Rejection{Index: batch.At[rj.Index], Err: rj.Err})
		s.metrics.rejected.WithLabelValues(rejectReason(rj.Err)).Inc()
	}
	slices.SortFunc(rejected, func(a, b otlp.Rejection) int { return a.Index - b.Index })
	s.otlpAnswer(w, enc, http.StatusOK, answer(int64(len(rejected)), otlp.Describe(noun, rejected)))
}

// otlpError answers err as a google.rpc.Status. status 0 takes the status
// of err's code, as a problem document would have it.
func (s *Server) otlpError(w http.ResponseWriter, r *http.Request, enc string, status int, err error) {
	p := wire.ProblemOf(err)
	if status == 0 {
		status = p.Status
	}
	switch {
	case r.Context().Err() != nil:
		s.log.Debug("request ended before its answer", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500 && p.Code == agenttrail.EINTERNAL:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	if errors.As(err, new(bodyLeft)) {
		w.Header().Set("Connection", "close")
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	s.otlpAnswer(w, enc, status, &statuspb.Status{Code: grpcCode(status), Message: msg})
}

func (s *Server) otlpAnswer(w http.ResponseWriter, enc string, status int, m proto.Message) {
	b, err := otlp.Encode(m, enc)
	if err != nil {
		s.log.Error("encode OTLP answer", "err", err)
		status, b = http.StatusInternalServerError, nil
	}
	w.Header().Set("Content-Type", enc)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		s.log.Debug("writing response", "err", err)
	}
}

// grpcCode is the google.rpc.Code of an HTTP status (the gRPC mapping).
func grpcCode(status int) int32 {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return 3 // INVALID_ARGUMENT
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	}
	return 13 // INTERNAL
}

// inflated bounds a decompressed body by MaxRequestBytes: past it, Read
// fails with *http.MaxBytesError, which readBody answers 413, so a small
// gzip bomb is refused like a large body.
type inflated struct {
	r    io.Reader
	left int64
	max  int64
}

func (b *inflated) Read(p []byte) (int, error) {
	if b.max == 0 {
		b.max = b.left
	}
	if b.left <= 0 {
		// At the limit: only the end of the body may follow.
		var probe [1]byte
		if n, err := b.r.Read(probe[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, &http.MaxBytesError{Limit: b.max}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *inflated) Close() error { return nil }

// newOTLPMapper returns the mapper of the OTLP routes, pricing with prices
// or the LLM proxy's built-in table.
func newOTLPMapper(prices *llm.Prices, log *slog.Logger) *otlp.Mapper {
	if prices == nil {
		var err error
		if prices, err = llm.DefaultPrices(); err != nil {
			log.Error("otlp: no price table; GenAI usage is recorded without cost", "err", err)
		}
	}
	return otlp.NewMapper(prices)
}
