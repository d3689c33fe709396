package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// The proxy-issued key an agent holds, and the real key behind it. Both
// look like AWS keys, as they do in use.
const (
	agentKeyID  = "PXAGENT0000000000001"
	agentSecret = "proxyIssuedSecretKey/abcdefghijklmnopqrst"
	realKeyID   = "AKIAREALUPSTREAM0001"
	realSecret  = "realUpstreamSecretKey/ABCDEFGHIJKLMNOPQRS"
	realToken   = "real-session-token-xyz"
)

func testCredentials() map[string]Credential {
	return map[string]Credential{agentKeyID: {
		SecretAccessKey: agentSecret,
		Actor:           capture.Actor{ID: "agent-data", Name: "Data agent", Project: "etl"},
		SessionTags:     map[string]string{"team": "payments", "env": "staging"},
		Upstream:        UpstreamCredential{AccessKeyID: realKeyID, SecretAccessKey: realSecret, SessionToken: realToken, AccountID: account},
	}}
}

// account is the AWS account of the real key.
const account = "123456789012"

// memRecorder keeps the events it is given, for tests to inspect.
type memRecorder = capturetest.Events

// fakeAWS plays S3, STS and DynamoDB. It accepts only requests signed with
// the REAL credentials, checked by recomputing the signature with the SDK's
// signer over the headers the request says it signed, and answers as AWS
// does otherwise.
type fakeAWS struct {
	t       testing.TB
	mu      sync.Mutex
	objects map[string][]byte // bucket/key
	refused int
	seen    int
}

func newFakeAWS(t testing.TB) *fakeAWS {
	return &fakeAWS{t: t, objects: map[string][]byte{"reports/2026/q1.csv": []byte("a,b\n1,2\n")}}
}

func (f *fakeAWS) counts() (seen, refused int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen, f.refused
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	service, err := f.checkSignature(r, body)
	f.mu.Lock()
	f.seen++
	if err != nil {
		f.refused++
	}
	f.mu.Unlock()
	if err != nil {
		f.t.Logf("fake AWS refused %s %s: %v", r.Method, r.URL, err)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "<Error><Code>SignatureDoesNotMatch</Code><Message>%s</Message></Error>", xmlEscape(err.Error()))
		return
	}
	switch service {
	case "s3":
		f.s3(w, r, body)
	case "sts":
		f.sts(w, r, body)
	case "dynamodb":
		f.dynamodb(w, r, body)
	default:
		http.Error(w, "unknown service "+service, http.StatusBadRequest)
	}
}

// checkSignature verifies r was signed by the real key, independently of
// the proxy's own verification code.
func (f *fakeAWS) checkSignature(r *http.Request, body []byte) (service string, err error) {
	authz := r.Header.Get("Authorization")
	fields := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(authz, "AWS4-HMAC-SHA256 "), ", ") {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 {
		return "", fmt.Errorf("no SigV4 credential in %q", authz)
	}
	if scope[0] != realKeyID {
		return "", fmt.Errorf("signed with key %s, want the real key", scope[0])
	}
	if r.Header.Get("X-Amz-Security-Token") != realToken {
		return "", fmt.Errorf("session token %q, want the real one", r.Header.Get("X-Amz-Security-Token"))
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, agentKeyID) || strings.Contains(v, agentSecret) {
				return "", fmt.Errorf("header %s carries the agent's credential", k)
			}
		}
	}
	service, region := scope[3], scope[2]
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "", err
	}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	vr, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	vr.Header = http.Header{}
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			vr.ContentLength = r.ContentLength
		default:
			vr.Header[textproto.CanonicalMIMEHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := sdkaws.Credentials{AccessKeyID: realKeyID, SecretAccessKey: realSecret, SessionToken: realToken}
	err = v4.NewSigner().SignHTTP(context.Background(), creds, vr, hash, service, region, at, func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = service == "s3"
	})
	if err != nil {
		return "", err
	}
	if got, want := vr.Header.Get("Authorization"), authz; got != want {
		return "", fmt.Errorf("signature mismatch:\nreceived %s\nexpected %s", want, got)
	}
	return service, nil
}

func (f *fakeAWS) s3(w http.ResponseWriter, r *http.Request, body []byte) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case bucket == "" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Owner><ID>o</ID></Owner><Buckets><Bucket><Name>reports</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>`)
	case key == "" && r.Method == http.MethodGet:
		prefix := r.URL.Query().Get("prefix")
		var keys []string
		for k := range f.objects {
			if b, name, _ := strings.Cut(k, "/"); b == bucket && strings.HasPrefix(name, prefix) {
				keys = append(keys, name)
			}
		}
		sort.Strings(keys)
		var buf bytes.Buffer
		fmt.Fprintf(&buf, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>`, bucket, prefix, len(keys))
		for _, k := range keys {
			fmt.Fprintf(&buf, `<Contents><Key>%s</Key><Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>`, xmlEscape(k), len(f.objects[bucket+"/"+k]))
		}
		buf.WriteString(`</ListBucketResult>`)
		w.Header().Set("Content-Type", "application/xml")
		w.Write(buf.Bytes())
	case r.Method == http.MethodPut:
		f.objects[bucket+"/"+key] = body
		w.Header().Set("ETag", `"etag-1"`)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		b, ok := f.objects[bucket+"/"+key]
		if !ok {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			if r.Method == http.MethodGet {
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>`+xmlEscape(key)+`</Key></Error>`)
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Header().Set("ETag", `"etag-1"`)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	case r.Method == http.MethodDelete:
		delete(f.objects, bucket+"/"+key)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "not supported by the fake", http.StatusNotImplemented)
	}
}

func (f *fakeAWS) sts(w http.ResponseWriter, r *http.Request, body []byte) {
	form, _ := url.ParseQuery(string(body))
	if form.Get("Action") != "GetCallerIdentity" {
		http.Error(w, "not supported by the fake", http.StatusNotImplemented)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/agenttrail-proxy</Arn><UserId>AIDAEXAMPLEUSERID0001</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
}

func (f *fakeAWS) dynamodb(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct{ TableName string }
	json.Unmarshal(body, &req)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if req.TableName != "Users" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}`)
		return
	}
	switch strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.") {
	case "GetItem":
		io.WriteString(w, `{"Item":{"id":{"S":"u-1"},"name":{"S":"Ada"}}}`)
	case "PutItem":
		io.WriteString(w, `{}`)
	default:
		http.Error(w, "not supported by the fake", http.StatusNotImplemented)
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// startProxy serves a Proxy for cfg in front of upstream and returns its
// URL. cfg.Recorder defaults to a new memRecorder, returned too.
func startProxy(t testing.TB, upstream string, cfg Config) (string, *memRecorder) {
	t.Helper()
	var mem *memRecorder
	if cfg.Recorder == nil {
		mem = &memRecorder{}
		cfg.Recorder = mem
	}
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Upstream = u
	if cfg.Credentials == nil {
		cfg.Credentials = testCredentials()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { p.Close() })
	return srv.URL, mem
}

// sdkConfig is what an agent's SDK is configured with: the proxy-issued
// key and the proxy as its endpoint.
func sdkConfig(proxy, keyID, secret string) sdkaws.Config {
	return sdkaws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint:     sdkaws.String(proxy),
		RetryMaxAttempts: 1,
	}
}

type clients struct {
	s3  *s3.Client
	sts *sts.Client
	ddb *dynamodb.Client
}

func newClients(proxy, keyID, secret string) clients {
	cfg := sdkConfig(proxy, keyID, secret)
	return clients{
		s3:  s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		sts: sts.NewFromConfig(cfg),
		ddb: dynamodb.NewFromConfig(cfg),
	}
}

// awsMeta decodes an event's metadata.aws.
func awsMeta(t testing.TB, e agenttrail.Event) AWS {
	t.Helper()
	var m struct {
		AWS AWS `json:"aws"`
	}
	if err := json.Unmarshal(e.Metadata, &m); err != nil {
		t.Fatalf("metadata %s: %v", e.Metadata, err)
	}
	return m.AWS
}
