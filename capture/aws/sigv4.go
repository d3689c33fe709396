package aws

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	// unsignedPayload and the streaming variants stand in for the payload
	// hash; the body is not part of the signature.
	unsignedPayload = "UNSIGNED-PAYLOAD"
)

// authorization is the parsed Authorization header of a SigV4 request.
type authorization struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
}

// scopePart is what may appear in a region or service name; both end up in
// the upstream host name, so nothing else is let through.
var scopePart = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

var errNoAuth = errors.New("the request is not signed with AWS Signature Version 4")

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=…".
func parseAuthorization(v string) (authorization, error) {
	var a authorization
	alg, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || alg != sigV4Algorithm {
		return a, errNoAuth
	}
	for field := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "Credential":
			parts := strings.Split(val, "/")
			if len(parts) != 5 || parts[4] != "aws4_request" {
				return a, errors.New("the credential scope is malformed")
			}
			a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(val, ";")
		case "Signature":
			a.Signature = val
		}
	}
	switch {
	case a.AccessKeyID == "" || a.Signature == "" || len(a.SignedHeaders) == 0:
		return a, errors.New("the Authorization header lacks Credential, SignedHeaders or Signature")
	case !scopePart.MatchString(a.Region) || !scopePart.MatchString(a.Service):
		return a, errors.New("the credential scope names an invalid region or service")
	case !slices.Contains(a.SignedHeaders, "host"):
		return a, errors.New("the host header is not signed")
	}
	return a, nil
}

// signingTime is the request's X-Amz-Date, which SigV4 clients always sign.
func signingTime(r *http.Request, a authorization) (time.Time, error) {
	if !slices.Contains(a.SignedHeaders, "x-amz-date") {
		return time.Time{}, errors.New("the x-amz-date header is not signed")
	}
	t, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return time.Time{}, errors.New("the X-Amz-Date header is malformed")
	}
	if t.Format("20060102") != a.Date {
		return time.Time{}, errors.New("X-Amz-Date does not match the date of the credential scope")
	}
	return t, nil
}

// verify recomputes the signature of r with secret over exactly the
// headers the client signed, using the SDK's signer so canonicalization is
// the one AWS clients use, and compares it with the client's in constant
// time.
func verify(ctx context.Context, signer *v4.Signer, r *http.Request, a authorization, secret, payloadHash string, at time.Time) bool {
	vr := &http.Request{Method: r.Method, Host: r.Host, Header: http.Header{}}
	u := *r.URL
	vr.URL = &u
	for _, h := range a.SignedHeaders {
		switch h {
		case "host":
		case "content-length":
			vr.ContentLength = r.ContentLength
		default:
			if vals := r.Header.Values(h); vals != nil {
				vr.Header[textproto.CanonicalMIMEHeaderKey(h)] = vals
			}
		}
	}
	creds := sdkaws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: secret}
	if err := signer.SignHTTP(ctx, creds, vr, payloadHash, a.Service, a.Region, at, signerOptions(a.Service)); err != nil {
		return false
	}
	got, err := parseAuthorization(vr.Header.Get("Authorization"))
	if err != nil || !slices.Equal(got.SignedHeaders, a.SignedHeaders) {
		return false
	}
	return hmac.Equal([]byte(got.Signature), []byte(a.Signature))
}

// signerOptions: S3 signs the path as sent; every other service signs it
// escaped once more.
func signerOptions(service string) func(*v4.SignerOptions) {
	return func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = service == "s3"
	}
}
