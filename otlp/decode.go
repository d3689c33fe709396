// Package otlp turns OpenTelemetry data received over OTLP/HTTP (spans and
// log records) into audit events, by the OpenTelemetry semantic
// conventions: a GenAI call becomes an llm-proxy event with its token usage
// and cost, an MCP or JSON-RPC tool call an mcp-tool event, an HTTP client
// span a forward-proxy event, a process span a shell event; anything else
// is kept as source "otel" with its attributes under metadata.otel. The
// server's /v1/otlp routes decode with it and write through the one write
// path. Decoding uses the OpenTelemetry proto module; nothing here encodes
// protobuf by hand.
package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/agenttrail/agenttrail"
)

// The two OTLP/HTTP encodings.
const (
	ContentTypeProtobuf = "application/x-protobuf"
	ContentTypeJSON     = "application/json"
)

// Encoding returns the encoding a request's Content-Type names: protobuf or
// JSON. Any other type is an EINVALID error naming Content-Type (the server
// answers it 415).
func Encoding(contentType string) (string, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && (mt == ContentTypeProtobuf || mt == ContentTypeJSON) {
		return mt, nil
	}
	return "", agenttrail.Invalid("Content-Type", "must be %s or %s for OTLP/HTTP, not %q", ContentTypeProtobuf, ContentTypeJSON, contentType)
}

// DecodeTraces decodes an ExportTraceServiceRequest in encoding (see
// Encoding). A body that does not decode is an EINVALID error naming body.
func DecodeTraces(body []byte, encoding string) (*coltracepb.ExportTraceServiceRequest, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	return req, decode(body, encoding, req)
}

// DecodeLogs decodes an ExportLogsServiceRequest in encoding (see
// Encoding). A body that does not decode is an EINVALID error naming body.
func DecodeLogs(body []byte, encoding string) (*collogspb.ExportLogsServiceRequest, error) {
	req := &collogspb.ExportLogsServiceRequest{}
	return req, decode(body, encoding, req)
}

// Encode encodes an Export*ServiceResponse (or a google.rpc.Status) in
// encoding, as OTLP/HTTP answers in the encoding of the request.
func Encode(m proto.Message, encoding string) ([]byte, error) {
	if encoding == ContentTypeJSON {
		return protojson.Marshal(m)
	}
	return proto.Marshal(m)
}

func decode(body []byte, encoding string, m proto.Message) error {
	if encoding == ContentTypeJSON {
		b, err := hexIDsToBase64(body)
		if err != nil {
			return agenttrail.Invalid("body", "is not OTLP JSON: %v", err)
		}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, m); err != nil {
			return agenttrail.Invalid("body", "is not an OTLP %s in JSON: %v", m.ProtoReflect().Descriptor().Name(), err)
		}
		return nil
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return agenttrail.Invalid("body", "is not an OTLP %s in protobuf: %v", m.ProtoReflect().Descriptor().Name(), err)
	}
	return nil
}

// idFields are the OTLP JSON members that hold trace and span ids. OTLP
// JSON writes them in hex, where the standard protobuf JSON mapping that
// protojson implements expects base64 for bytes: they are rewritten before
// protojson reads the body.
var idFields = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

// hexIDsToBase64 rewrites the hex ids of an OTLP JSON body as base64.
// Numbers are kept as written (64-bit timestamps must not pass through
// float64).
func hexIDsToBase64(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	if err := rewriteIDs(v, ""); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func rewriteIDs(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && idFields[k] {
				if s == "" {
					continue
				}
				b, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("%s%s %q is not hex", path, k, s)
				}
				v[k] = base64.StdEncoding.EncodeToString(b)
				continue
			}
			if err := rewriteIDs(x, path+k+"."); err != nil {
				return err
			}
		}
	case []any:
		for i, x := range v {
			if err := rewriteIDs(x, fmt.Sprintf("%s%d.", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
