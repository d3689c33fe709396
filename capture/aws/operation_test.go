package aws

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestIdentify(t *testing.T) {
	tests := []struct {
		method, target, service string
		header                  http.Header
		body                    string
		op, resourceID          string
	}{
		// S3 without the Go SDK's x-id: from method, path and subresource.
		{"GET", "/", "s3", nil, "", "ListBuckets", "123456789012"},
		{"PUT", "/logs", "s3", nil, "", "CreateBucket", "arn:aws:s3:::logs"},
		{"DELETE", "/logs", "s3", nil, "", "DeleteBucket", "arn:aws:s3:::logs"},
		{"HEAD", "/logs", "s3", nil, "", "HeadBucket", "arn:aws:s3:::logs"},
		{"GET", "/logs?list-type=2&prefix=a", "s3", nil, "", "ListObjectsV2", "arn:aws:s3:::logs"},
		{"GET", "/logs?prefix=a", "s3", nil, "", "ListObjects", "arn:aws:s3:::logs"},
		{"GET", "/logs?versions", "s3", nil, "", "ListObjectVersions", "arn:aws:s3:::logs"},
		{"GET", "/logs?policy", "s3", nil, "", "GetBucketPolicy", "arn:aws:s3:::logs"},
		{"PUT", "/logs?versioning", "s3", nil, "", "PutBucketVersioning", "arn:aws:s3:::logs"},
		{"POST", "/logs?delete", "s3", nil, "", "DeleteObjects", "arn:aws:s3:::logs"},
		{"GET", "/logs/2026/a%20b.gz", "s3", nil, "", "GetObject", "arn:aws:s3:::logs/2026/a b.gz"},
		{"HEAD", "/logs/a", "s3", nil, "", "HeadObject", "arn:aws:s3:::logs/a"},
		{"PUT", "/logs/a", "s3", nil, "", "PutObject", "arn:aws:s3:::logs/a"},
		{"PUT", "/logs/a", "s3", http.Header{"X-Amz-Copy-Source": {"/src/b"}}, "", "CopyObject", "arn:aws:s3:::logs/a"},
		{"DELETE", "/logs/a", "s3", nil, "", "DeleteObject", "arn:aws:s3:::logs/a"},
		{"GET", "/logs/a?tagging", "s3", nil, "", "GetObjectTagging", "arn:aws:s3:::logs/a"},
		{"POST", "/logs/a?uploads", "s3", nil, "", "CreateMultipartUpload", "arn:aws:s3:::logs/a"},
		{"PUT", "/logs/a?partNumber=1&uploadId=u", "s3", nil, "", "UploadPart", "arn:aws:s3:::logs/a"},
		{"POST", "/logs/a?uploadId=u", "s3", nil, "", "CompleteMultipartUpload", "arn:aws:s3:::logs/a"},
		{"DELETE", "/logs/a?uploadId=u", "s3", nil, "", "AbortMultipartUpload", "arn:aws:s3:::logs/a"},
		{"GET", "/logs/a?x-id=GetObject", "s3", nil, "", "GetObject", "arn:aws:s3:::logs/a"},
		// JSON protocols name the operation in X-Amz-Target.
		{"POST", "/", "dynamodb", http.Header{"X-Amz-Target": {"DynamoDB_20120810.Query"}}, `{"TableName":"Orders"}`, "Query", "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders"},
		{"POST", "/", "kms", http.Header{"X-Amz-Target": {"TrentService.Decrypt"}}, `{}`, "Decrypt", ""},
		// Query protocols name it in Action, in the URL or a form body.
		{"GET", "/?Action=DescribeInstances&Version=2016-11-15", "ec2", nil, "", "DescribeInstances", ""},
		{"POST", "/", "sts", http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}, "Action=AssumeRole&RoleArn=x", "AssumeRole", ""},
		// Smithy RPC v2.
		{"POST", "/service/GraniteServiceVersion20100801/operation/GetMetricData", "monitoring", nil, "", "GetMetricData", ""},
		// REST protocols other than S3 are not named.
		{"GET", "/2015-03-31/functions", "lambda", nil, "", "", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
		for k, v := range tt.header {
			r.Header[k] = v
		}
		c := identify(r, tt.service, "eu-west-1", "123456789012", []byte(tt.body))
		if c.Operation != tt.op || c.ResourceID != tt.resourceID || c.ResourceType != resourceTypeOf(tt.service, tt.op, tt.target) {
			t.Errorf("identify(%s %s, %s) = %q %q %q, want %q %q %q", tt.method, tt.target, tt.service, c.Operation, c.ResourceType, c.ResourceID,
				tt.op, resourceTypeOf(tt.service, tt.op, tt.target), tt.resourceID)
		}
	}
}

// resourceTypeOf is the resource type TestIdentify expects: S3 objects and
// buckets, DynamoDB tables, the account for account-wide calls, the
// service otherwise.
func resourceTypeOf(service, op, target string) string {
	path, _, _ := strings.Cut(target, "?")
	switch {
	case op == "ListBuckets":
		return "s3:account"
	case service == "s3" && strings.Count(path, "/") > 1:
		return "s3:object"
	case service == "s3":
		return "s3:bucket"
	case service == "dynamodb":
		return "dynamodb:table"
	}
	return service
}

func TestErrorOf(t *testing.T) {
	tests := []struct {
		header        http.Header
		body          string
		code, message string
	}{
		{http.Header{"X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/"}}, "", "ThrottlingException", ""},
		{nil, `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"x"}`, "ConditionalCheckFailedException", "x"},
		{nil, `{"code":"AccessDeniedException","Message":"User is not authorized"}`, "AccessDeniedException", "User is not authorized"},
		{nil, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`, "AccessDenied", "Access Denied"},
		{nil, `<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code></Error></ErrorResponse>`, "ExpiredToken", ""},
		{nil, `<ErrorResponse><Error><Type>Sender</Type><Message>  The token expired. </Message><Code>ExpiredToken</Code></Error></ErrorResponse>`, "ExpiredToken", "The token expired."},
		{nil, `not a body`, "", ""},
		{nil, ``, "", ""},
	}
	for _, tt := range tests {
		resp := &http.Response{Header: tt.header, Body: http.NoBody}
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		if tt.body != "" {
			resp.Body = io.NopCloser(strings.NewReader(tt.body))
		}
		if code, msg := errorOf(resp); code != tt.code || msg != tt.message {
			t.Errorf("errorOf(%v, %q) = %q, %q; want %q, %q", tt.header, tt.body, code, msg, tt.code, tt.message)
		}
		if rest, _ := io.ReadAll(resp.Body); string(rest) != tt.body {
			t.Errorf("errorOf(%v, %q) left the body %q for the client", tt.header, tt.body, rest)
		}
	}
}

func TestVirtualHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://s3.eu-west-1.amazonaws.com/reports/2026/a%20b.csv?x-id=GetObject", "https://reports.s3.eu-west-1.amazonaws.com/2026/a%20b.csv?x-id=GetObject"},
		{"https://s3.eu-west-1.amazonaws.com/reports?list-type=2", "https://reports.s3.eu-west-1.amazonaws.com/?list-type=2"},
		{"https://s3.eu-west-1.amazonaws.com/reports/", "https://reports.s3.eu-west-1.amazonaws.com/"},
		{"https://s3.eu-west-1.amazonaws.com/", "https://s3.eu-west-1.amazonaws.com/"},
		{"https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/k", "https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/k"},
		{"https://s3.eu-west-1.amazonaws.com/Upper/k", "https://s3.eu-west-1.amazonaws.com/Upper/k"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		virtualHost(u)
		if u.String() != tt.want {
			t.Errorf("virtualHost(%s) = %s, want %s", tt.in, u, tt.want)
		}
	}
}
