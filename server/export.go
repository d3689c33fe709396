package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/export"
	"github.com/agenttrail/agenttrail/wire"
)

// exportPage is how many events GET /v1/export reads from the store at a
// time: large enough that paging costs little, small enough that memory
// stays bounded whatever the number of matches.
const exportPage = 1000

// exportCaps bounds concurrent exports: each reads the store as fast as
// its client takes the answer, so one org (or token) must not run so many
// that others cannot export at all.
var exportCaps = slotCaps{total: 32, perOrg: 8, perToken: 4}

// streamWriteGrace is how long one write of a long-lived answer (an export,
// an event stream) may take before the client is given up on. Such answers
// outlive the server's WriteTimeout, so they set a deadline per write.
const streamWriteGrace = 30 * time.Second

// parseExport reads the parameters of GET /v1/export: the filters and
// format (default ndjson).
func parseExport(v url.Values, now time.Time) (string, agenttrail.Filter, error) {
	if err := wire.CheckParams(v, "format"); err != nil {
		return "", agenttrail.Filter{}, err
	}
	if len(v["format"]) > 1 {
		return "", agenttrail.Filter{}, agenttrail.Invalid("format", "may be given once")
	}
	format := export.NDJSON
	if v.Has("format") {
		format = v.Get("format")
		if export.ContentType(format) == "" {
			return "", agenttrail.Filter{}, agenttrail.Invalid("format", "must be ndjson, csv, ocsf or cef, not %q", format)
		}
	}
	f, err := wire.ParseFilter(v, now)
	return format, f, err
}

// exportEvents is GET /v1/export: every event the filters match, in seq
// (commit) order, in one format. It pages through the store and flushes
// each page as it goes, so memory stays bounded and the client sees
// progress; it stops when the client goes away. It is a snapshot: it ends
// at the newest commit when it started, so an export of a busy trail ends,
// and two exports with an absolute until agree.
//
// An error before the first byte (a bad parameter, the store failing on
// the first page) is a problem+json answer. After it, the status is sent
// and the only way left to tell the client is to cut the connection
// without ending the body: an HTTP/1.1 client sees an unexpected EOF (no
// terminating chunk), never a complete-looking partial export.
func (s *Server) exportEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	now := s.now()
	format, f, err := parseExport(r.URL.Query(), now)
	if err != nil {
		return err
	}
	release, err := s.exports.take(principalOf(ctx))
	if err != nil {
		return err
	}
	defer release()
	head, err := s.headSeq(ctx)
	if err != nil {
		return err
	}
	q := agenttrail.Query{Filter: scope(principalOf(ctx), f), Sort: agenttrail.SortSeq, Limit: exportPage}
	page, err := s.store.Query(ctx, q)
	if err != nil {
		return err
	}
	attachment(w, export.ContentType(format), "agenttrail-"+now.UTC().Format("20060102T150405Z")+"."+export.Extension(format))

	// Each page sets its own write deadline: the server's WriteTimeout
	// would cut a long export.
	rc := http.NewResponseController(w)
	ew, _ := export.NewWriter(format, w) // format was checked above
	n := 0
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteGrace))
		if revoked(ctx) { // after the deadline: see endOnRevoke
			s.cutExport(ctx, "writing export", context.Cause(ctx), n)
		}
		end := false
		for i := range page.Events {
			if page.Events[i].Seq > head {
				end = true // committed after the export began
				break
			}
			if err := ew.Write(&page.Events[i]); err != nil {
				s.cutExport(ctx, "writing export", err, n)
			}
			n++
		}
		if end || len(page.Events) < q.Limit || page.Next == nil {
			break
		}
		if err := ew.Flush(); err != nil {
			s.cutExport(ctx, "writing export", err, n)
		}
		_ = rc.Flush()
		q.After = page.Next
		if page, err = s.store.Query(ctx, q); err != nil {
			s.cutExport(ctx, "reading export", err, n)
		}
	}
	if err := ew.Close(); err != nil {
		s.cutExport(ctx, "writing export", err, n)
	}
	return nil
}

// download is the handler of an answer that is a file: f answers an error
// only before it sent its status (with attachment), and the error becomes
// the problem document; after it, f ends the body itself.
func (s *Server) download(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			writeProblem(w, r, s.log, err)
		}
	})
}

// attachment sends the status and headers of a download named filename.
func attachment(w http.ResponseWriter, contentType, filename string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// cutExport ends an export that failed after its status was sent: it aborts
// the connection so the body is visibly truncated. A client that went away
// is not an error of the server.
func (s *Server) cutExport(ctx context.Context, what string, err error, written int) {
	switch {
	case revoked(ctx):
		s.log.Info("export ended: its token was revoked or its session expired", "events", written)
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		s.log.Debug("export ended by the client", "events", written)
	default:
		s.log.Error(what, "err", err, "events", written)
	}
	panic(http.ErrAbortHandler)
}
