package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/agenttrail/agenttrail"
)

// signed builds a request to the proxy signed by hand with keyID and
// secret, as an SDK would sign it, at time at.
func signed(t *testing.T, method, target, service, keyID, secret string, body []byte, hdr http.Header, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if declared := req.Header.Get("X-Amz-Content-Sha256"); declared != "" {
		hash = declared
	} else if service == "s3" {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	err = v4.NewSigner().SignHTTP(context.Background(), sdkaws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
		req, hash, service, "eu-west-1", at, signerOptions(service))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) (int, string, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestRefused checks every way the proxy refuses a request before it goes
// upstream: the error AWS would answer, and the failure recorded.
func TestRefused(t *testing.T) {
	fake := newFakeAWS(t)
	up := httptest.NewServer(fake)
	defer up.Close()
	now := time.Now()
	proxy, rec := startProxy(t, up.URL, Config{Now: func() time.Time { return now }})
	ddbTarget := http.Header{"X-Amz-Target": {"DynamoDB_20120810.GetItem"}, "Content-Type": {"application/x-amz-json-1.0"}}
	stsForm := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	getItem := []byte(`{"TableName":"Users"}`)

	tampered := signed(t, "GET", proxy+"/reports/a.csv", "s3", agentKeyID, agentSecret, nil, nil, now)
	tampered.URL.Path = "/reports/b.csv" // a signed part changed after signing

	streaming := signed(t, "PUT", proxy+"/reports/a.csv", "s3", agentKeyID, agentSecret, nil,
		http.Header{"X-Amz-Content-Sha256": {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}}, now)
	unsigned, _ := http.NewRequest("GET", proxy+"/reports/a.csv", nil)

	tests := []struct {
		name      string
		req       *http.Request
		status    int
		code      string // in the body
		action    string
		actor     string
		keyID     string
		xmlOrJSON string
	}{
		{"wrong secret, s3", signed(t, "GET", proxy+"/reports/a.csv", "s3", agentKeyID, "not-the-secret", nil, nil, now),
			403, "SignatureDoesNotMatch", "s3:GetObject", "anonymous", agentKeyID, "<Error>"},
		{"wrong secret, json", signed(t, "POST", proxy+"/", "dynamodb", agentKeyID, "not-the-secret", getItem, ddbTarget, now),
			403, "InvalidSignatureException", "dynamodb:GetItem", "anonymous", agentKeyID, `"__type"`},
		{"unknown key, query", signed(t, "POST", proxy+"/", "sts", "AKIAUNKNOWNKEY000001", "x", []byte("Action=GetCallerIdentity&Version=2011-06-15"), stsForm, now),
			403, "InvalidClientTokenId", "sts:GetCallerIdentity", "anonymous", "AKIAUNKNOWNKEY000001", "<ErrorResponse>"},
		{"tampered", tampered, 403, "SignatureDoesNotMatch", "s3:GetObject", "anonymous", agentKeyID, "<Error>"},
		{"signed an hour ago", signed(t, "GET", proxy+"/reports/a.csv", "s3", agentKeyID, agentSecret, nil, nil, now.Add(-time.Hour)),
			403, "RequestTimeTooSkewed", "s3:GetObject", "anonymous", agentKeyID, "<Error>"},
		{"chunk-signed upload", streaming, 400, "InvalidRequest", "s3:PutObject", "anonymous", agentKeyID, "<Error>"},
		{"unsigned", unsigned, 403, "MissingAuthenticationToken", "unknown:GET /reports/a.csv", "anonymous", "", "<ErrorResponse>"},
	}
	for i, tt := range tests {
		status, body, _ := do(t, tt.req)
		if status != tt.status || !strings.Contains(body, tt.code) || !strings.Contains(body, tt.xmlOrJSON) {
			t.Errorf("%s: %d %s; want %d with %s in a %s body", tt.name, status, body, tt.status, tt.code, tt.xmlOrJSON)
		}
		e := rec.Wait(t, i+1)[i]
		m := awsMeta(t, e)
		wantResult := agenttrail.ResultDenied
		if tt.status != http.StatusForbidden {
			wantResult = agenttrail.ResultFailure
		}
		if e.Result != wantResult || e.StatusCode != tt.status || m.ErrorCode != tt.code || e.Action != tt.action ||
			e.ActorID != tt.actor || m.AccessKeyID != tt.keyID || m.SessionTags != nil {
			t.Errorf("%s: event %q by %q, %d %s, metadata %+v", tt.name, e.Action, e.ActorID, e.StatusCode, e.Result, m)
		}
	}
	if seen, _ := fake.counts(); seen != 0 {
		t.Errorf("the upstream saw %d refused requests", seen)
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	up := httptest.NewServer(http.NotFoundHandler())
	addr := up.URL
	up.Close()
	proxy, rec := startProxy(t, addr, Config{})
	_, err := newClients(proxy, agentKeyID, agentSecret).s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: sdkaws.String("b"), Key: sdkaws.String("k")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("HeadObject through a proxy without upstream: %v, want an API error", err)
	}
	e := rec.Wait(t, 1)[0]
	if e.Result != agenttrail.ResultError || e.StatusCode != http.StatusBadGateway || e.Action != "s3:HeadObject" || e.ActorID != "agent-data" {
		t.Errorf("event %q by %q, %d %s; want s3:HeadObject by agent-data, 502 error", e.Action, e.ActorID, e.StatusCode, e.Result)
	}
}

func TestHeadMissingObject(t *testing.T) {
	up := httptest.NewServer(newFakeAWS(t))
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{})
	_, err := newClients(proxy, agentKeyID, agentSecret).s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: sdkaws.String("reports"), Key: sdkaws.String("nope")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NotFound" {
		t.Fatalf("HeadObject of a missing key: %v, want NotFound", err)
	}
	e := rec.Wait(t, 1)[0]
	if m := awsMeta(t, e); e.Action != "s3:HeadObject" || e.StatusCode != 404 || e.Result != agenttrail.ResultFailure || m.ErrorCode != "NotFound" || e.ActorID != "agent-data" {
		t.Errorf("event %q by %q, %d %s code %q", e.Action, e.ActorID, e.StatusCode, e.Result, m.ErrorCode)
	}
}
