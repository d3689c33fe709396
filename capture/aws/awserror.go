package aws

import (
	"bytes"
	"cmp"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strings"

	"github.com/agenttrail/agenttrail/capture"
)

// protocol is how a service encodes its errors, told from the request.
type protocol int

const (
	protoQuery protocol = iota // <ErrorResponse><Error><Code>: STS, IAM, SQS…
	protoS3                    // <Error><Code>
	protoJSON                  // {"__type": …} and x-amzn-ErrorType: DynamoDB, Lambda…
)

func protocolOf(r *http.Request, service string) protocol {
	switch {
	case service == "s3":
		return protoS3
	case r.Header.Get("X-Amz-Target") != "", strings.Contains(r.Header.Get("Content-Type"), "json"):
		return protoJSON
	}
	return protoQuery
}

// errorCodes are the codes AWS answers a refused signature with, by
// protocol, so SDKs raise the error they would raise against AWS.
type errorCodes struct{ unknownKey, badSignature, missingAuth string }

func codesFor(p protocol) errorCodes {
	switch p {
	case protoS3:
		return errorCodes{"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}
	case protoJSON:
		return errorCodes{"UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException"}
	}
	return errorCodes{"InvalidClientTokenId", "SignatureDoesNotMatch", "MissingAuthenticationToken"}
}

// writeError answers an AWS-style error in protocol p.
func writeError(w http.ResponseWriter, p protocol, status int, code, msg, requestID string) {
	h := w.Header()
	h.Set("X-Amzn-Requestid", requestID)
	switch p {
	case protoJSON:
		h.Set("Content-Type", "application/x-amz-json-1.0")
		h.Set("X-Amzn-Errortype", code)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	case protoS3:
		h.Set("Content-Type", "application/xml")
		h.Set("X-Amz-Request-Id", requestID)
		w.WriteHeader(status)
		io.WriteString(w, xml.Header)
		xml.NewEncoder(w).Encode(struct {
			XMLName   xml.Name `xml:"Error"`
			Code      string
			Message   string
			RequestID string `xml:"RequestId"`
		}{Code: code, Message: msg, RequestID: requestID})
	default:
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		type errorBody struct {
			Type    string
			Code    string
			Message string
		}
		xml.NewEncoder(w).Encode(struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Error     errorBody
			RequestID string `xml:"RequestId"`
		}{Error: errorBody{"Sender", code, msg}, RequestID: requestID})
	}
}

// maxErrorBody bounds how much of an error response is read for its code.
const maxErrorBody = 64 << 10

// errorOf reads the AWS error code and message of a failed response: the
// code from the x-amzn-ErrorType header or the start of its JSON or XML
// body, the message from the body, which is put back for the client to
// read.
func errorOf(resp *http.Response) (code, message string) {
	peek, _ := capture.PeekBody(resp, maxErrorBody)
	code, message = errorInBody(peek)
	if t := resp.Header.Get("X-Amzn-Errortype"); t != "" {
		code, _, _ = strings.Cut(t, ":")
	}
	return code, message
}

func errorInBody(b []byte) (code, message string) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var v struct {
			Type     string `json:"__type"`
			Code     string `json:"code"`
			CodeU    string `json:"Code"`
			Message  string `json:"message"`
			MessageU string `json:"Message"`
		}
		json.Unmarshal(b, &v)
		code = cmp.Or(v.Type, v.Code, v.CodeU)
		// "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		code, _, _ = strings.Cut(code, ":")
		return code, cmp.Or(v.Message, v.MessageU)
	}
	// The first <Code> and <Message> of <Error> or <ErrorResponse><Error>.
	d := xml.NewDecoder(bytes.NewReader(b))
	for code == "" || message == "" {
		tok, err := d.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok || (se.Name.Local != "Code" && se.Name.Local != "Message") {
			continue
		}
		var text string
		if d.DecodeElement(&text, &se) != nil {
			break
		}
		if se.Name.Local == "Code" && code == "" {
			code = strings.TrimSpace(text)
		} else if se.Name.Local == "Message" && message == "" {
			message = strings.TrimSpace(text)
		}
	}
	return code, message
}
