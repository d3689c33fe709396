package aws

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// call is what a request asks of which AWS resource. ResourceType is the
// service's own name for the kind of resource ("s3:object",
// "dynamodb:table"), or the service alone when the proxy cannot tell.
type call struct {
	Operation    string
	ResourceType string
	ResourceID   string
}

// accountOps are operations on an account as a whole: their resource is
// the account.
var accountOps = map[string]bool{
	"s3:ListBuckets": true, "sts:GetCallerIdentity": true, "dynamodb:ListTables": true,
	"iam:ListUsers": true, "iam:ListRoles": true, "lambda:ListFunctions": true,
}

// identify names the operation and resource of a request to service in
// region, with account the upstream credential's account id ("" when
// unknown). body is the request body when the proxy read it, else nil.
func identify(r *http.Request, service, region, account string, body []byte) call {
	c := identifyOp(r, service, region, account, body)
	switch {
	case accountOps[service+":"+c.Operation]:
		c.ResourceType, c.ResourceID = service+":account", account
	case c.ResourceType == "":
		c.ResourceType = service
	}
	return c
}

func identifyOp(r *http.Request, service, region, account string, body []byte) call {
	var c call
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		// JSON protocols: "DynamoDB_20120810.GetItem".
		_, c.Operation, _ = strings.Cut(target, ".")
		if c.Operation == "" {
			c.Operation = target
		}
	} else if svc, op, ok := rpcV2Operation(r.URL.Path); ok && svc != "" {
		c.Operation = op
	} else if service == "s3" {
		c.Operation, c.ResourceType, c.ResourceID = s3Call(r)
		return c
	} else {
		c.Operation = queryAction(r, body)
	}
	if service == "dynamodb" && len(body) > 0 {
		var req struct{ TableName string }
		if json.Unmarshal(body, &req) == nil && req.TableName != "" {
			c.ResourceType = "dynamodb:table"
			c.ResourceID = "arn:aws:dynamodb:" + region + ":" + account + ":table/" + req.TableName
		}
	}
	return c
}

// rpcV2Operation reads the Smithy RPC v2 path /service/NAME/operation/OP.
func rpcV2Operation(path string) (svc, op string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/service/")
	if !ok {
		return "", "", false
	}
	svc, op, ok = strings.Cut(rest, "/operation/")
	return svc, op, ok && op != "" && !strings.Contains(op, "/")
}

// queryAction is the Action parameter of the query protocols (STS, IAM,
// EC2, SQS, SNS…), in the URL or a form body.
func queryAction(r *http.Request, body []byte) string {
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil {
			return v.Get("Action")
		}
	}
	return ""
}

// s3Subresources map a query parameter that selects a bucket or object
// subresource to the name it gives the operation's noun.
var s3Subresources = []struct{ param, noun string }{
	{"uploadId", ""}, {"uploads", ""}, {"tagging", "Tagging"}, {"acl", "Acl"}, {"policy", "Policy"},
	{"versioning", "Versioning"}, {"lifecycle", "LifecycleConfiguration"}, {"cors", "Cors"},
	{"encryption", "Encryption"}, {"location", "Location"}, {"website", "Website"},
	{"notification", "NotificationConfiguration"}, {"replication", "Replication"},
	{"logging", "Logging"}, {"versions", ""}, {"delete", ""}, {"attributes", "Attributes"},
	{"retention", "Retention"}, {"legal-hold", "LegalHold"}, {"object-lock", "ObjectLockConfiguration"},
	{"publicAccessBlock", "PublicAccessBlock"}, {"ownershipControls", "OwnershipControls"},
	{"restore", ""}, {"select", ""}, {"list-type", ""},
}

// s3Call names an S3 REST operation from the method, the path-style path
// and the subresource parameters, and the object or bucket it addresses.
func s3Call(r *http.Request) (op, typ, arn string) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case key != "":
		typ, arn = "s3:object", "arn:aws:s3:::"+bucket+"/"+key
	case bucket != "":
		typ, arn = "s3:bucket", "arn:aws:s3:::"+bucket
	}
	return s3Op(r, bucket, key), typ, arn
}

func s3Op(r *http.Request, bucket, key string) string {
	q := r.URL.Query()
	// The Go SDK names the operation itself.
	if id := q.Get("x-id"); id != "" {
		return id
	}
	sub := ""
	for _, s := range s3Subresources {
		if q.Has(s.param) {
			sub = s.param
			break
		}
	}
	m := r.Method
	switch {
	case bucket == "":
		if m == http.MethodGet {
			return "ListBuckets"
		}
	case key == "":
		return s3BucketOp(m, sub, q)
	default:
		return s3ObjectOp(m, sub, r.Header, q)
	}
	return m + " " + r.URL.Path
}

func s3BucketOp(m, sub string, q url.Values) string {
	switch sub {
	case "":
		switch m {
		case http.MethodGet:
			return "ListObjects"
		case http.MethodPut:
			return "CreateBucket"
		case http.MethodDelete:
			return "DeleteBucket"
		case http.MethodHead:
			return "HeadBucket"
		}
	case "list-type":
		if q.Get("list-type") == "2" {
			return "ListObjectsV2"
		}
		return "ListObjects"
	case "versions":
		return "ListObjectVersions"
	case "uploads":
		return "ListMultipartUploads"
	case "delete":
		return "DeleteObjects"
	}
	return s3Verb(m) + "Bucket" + nounOf(sub)
}

func s3ObjectOp(m, sub string, h http.Header, q url.Values) string {
	copySource := h.Get("X-Amz-Copy-Source") != ""
	switch {
	case sub == "" && m == http.MethodGet:
		return "GetObject"
	case sub == "" && m == http.MethodHead:
		return "HeadObject"
	case sub == "" && m == http.MethodDelete:
		return "DeleteObject"
	case sub == "" && m == http.MethodPut && copySource:
		return "CopyObject"
	case sub == "" && m == http.MethodPut:
		return "PutObject"
	case sub == "uploads" && m == http.MethodPost:
		return "CreateMultipartUpload"
	case sub == "uploadId" && m == http.MethodPut && copySource:
		return "UploadPartCopy"
	case sub == "uploadId" && m == http.MethodPut:
		return "UploadPart"
	case sub == "uploadId" && m == http.MethodPost:
		return "CompleteMultipartUpload"
	case sub == "uploadId" && m == http.MethodDelete:
		return "AbortMultipartUpload"
	case sub == "uploadId" && m == http.MethodGet:
		return "ListParts"
	case sub == "restore":
		return "RestoreObject"
	case sub == "select":
		return "SelectObjectContent"
	}
	return s3Verb(m) + "Object" + nounOf(sub)
}

func s3Verb(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead:
		return "Get"
	case http.MethodPut, http.MethodPost:
		return "Put"
	case http.MethodDelete:
		return "Delete"
	}
	return m
}

func nounOf(sub string) string {
	for _, s := range s3Subresources {
		if s.param == sub {
			return s.noun
		}
	}
	return ""
}
