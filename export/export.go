// Package export writes events in the formats people feed to SIEMs and
// spreadsheets: NDJSON (the wire format), CSV, OCSF JSON lines and ArcSight
// CEF. GET /v1/export streams through these writers, and so can any other
// caller that holds events.
package export

import (
	"bufio"
	"io"
	"runtime/debug"
	"strings"

	"github.com/agenttrail/agenttrail"
)

// The formats NewWriter knows.
const (
	NDJSON = "ndjson"
	CSV    = "csv"
	OCSF   = "ocsf"
	CEF    = "cef"
)

// Formats lists every format, the default first.
func Formats() []string { return []string{NDJSON, CSV, OCSF, CEF} }

// Writer writes events in one format. Write buffers; Flush hands what is
// buffered to the underlying io.Writer (a streaming caller flushes between
// batches); Close flushes and writes any trailer. A Writer is not safe for
// concurrent use, and is not usable after Close. Close does not close the
// underlying io.Writer.
type Writer interface {
	Write(e *agenttrail.Event) error
	Flush() error
	Close() error
}

// NewWriter returns a Writer of format onto w. An unknown format is an
// EINVALID error naming "format".
func NewWriter(format string, w io.Writer) (Writer, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case NDJSON:
		return newNDJSON(bw), nil
	case CSV:
		return newCSV(bw), nil
	case OCSF:
		return newOCSF(bw, productVersion()), nil
	case CEF:
		return newCEF(bw, productVersion()), nil
	}
	return nil, agenttrail.Invalid("format", "must be one of %s, not %q", strings.Join(Formats(), ", "), format)
}

// ContentType returns the media type of format, "" for an unknown one.
func ContentType(format string) string {
	switch format {
	case NDJSON, OCSF:
		return "application/x-ndjson"
	case CSV:
		return "text/csv; charset=utf-8"
	case CEF:
		return "text/plain; charset=utf-8"
	}
	return ""
}

// Extension returns the file name extension (without a dot) for format.
func Extension(format string) string {
	switch format {
	case OCSF:
		return "ocsf.jsonl"
	case CEF:
		return "cef"
	}
	return format
}

// productVersion is the version reported in OCSF and CEF headers: the main
// module's version as the Go toolchain stamped it, "dev" when there is
// none (tests, go run).
func productVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// severity is the shared severity scale of the OCSF and CEF mappings: how
// much a SIEM analyst should care about an event by its result alone. A
// refusal (denied: a policy or authorization said no) is what audits look
// for first, then the target failing the action (failure: a non-zero exit),
// then a surface breaking (error); success is routine.
type severity struct {
	ocsfID   int
	ocsfName string
	cef      int
}

func severityOf(r agenttrail.Result) severity {
	switch r {
	case agenttrail.ResultDenied:
		return severity{3, "Medium", 7}
	case agenttrail.ResultFailure:
		return severity{3, "Medium", 6}
	case agenttrail.ResultError:
		return severity{2, "Low", 5}
	case agenttrail.ResultSuccess:
		return severity{1, "Informational", 3}
	}
	return severity{0, "Unknown", 0}
}
