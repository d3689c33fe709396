package sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/agenttrail/agenttrail/export"
)

// s3sink archives batches as CloudTrail does: gzipped objects of NDJSON
// (or OCSF, CEF, CSV lines), one per org per batch, under
//
//	PREFIX/ORG/YYYY/MM/DD/SINK-FIRSTSEQ-LASTSEQ.EXT.gz
//
// (the date the first event of the object was received, UTC), written
// through aws-sdk-go-v2; endpoint (the url key) reaches any S3-compatible
// store with path-style addressing. A batch is held up to max_wait
// (default 5m) or max_events, so objects are few and large. A batch sent
// again writes the same keys with the same bytes: nothing twice.
// Credentials come from the SDK's default chain (AWS_* variables, shared
// files, the instance role).
type s3sink struct {
	cfg    Config
	client *s3.Client
}

// S3 batch defaults: objects of up to 10,000 events and 64 MiB.
const (
	s3MaxEvents = 10000
	s3MaxBytes  = 64 << 20
)

func newS3(c Config) (*s3sink, error) {
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	hc, err := httpClient(c)
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.HTTPClient = hc
		if c.URL != "" {
			o.BaseEndpoint = aws.String(c.URL)
			o.UsePathStyle = true
		}
	})
	return &s3sink{cfg: c, client: client}, nil
}

func (s *s3sink) Deliver(ctx context.Context, b *Batch) (*Result, error) {
	// One object per org, in seq order within each.
	var orgs []string
	byOrg := map[string][]int{}
	for i := range b.Events {
		o := b.Events[i].Org
		if _, ok := byOrg[o]; !ok {
			orgs = append(orgs, o)
		}
		byOrg[o] = append(byOrg[o], i)
	}
	for _, org := range orgs {
		idx := byOrg[org]
		first, last := &b.Events[idx[0]], &b.Events[idx[len(idx)-1]]
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if s.cfg.Format == export.CSV {
			zw.Write(CSVHeaderLine())
		}
		for _, i := range idx {
			zw.Write(b.Payloads[i])
		}
		if err := zw.Close(); err != nil {
			return nil, &Refused{Reason: err.Error()}
		}
		day := first.ReceivedAt.UTC()
		if day.IsZero() {
			day = first.Time.UTC()
		}
		ext := export.Extension(s.cfg.Format)
		if s.cfg.Format == FormatNative {
			ext = "ndjson"
		}
		key := path.Join(strings.Trim(s.cfg.Prefix, "/"), keySafe(org), day.Format("2006/01/02"),
			fmt.Sprintf("%s-%d-%d.%s.gz", s.cfg.Name, first.Seq, last.Seq, ext))
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:          aws.String(s.cfg.Bucket),
			Key:             aws.String(key),
			Body:            bytes.NewReader(buf.Bytes()),
			ContentType:     aws.String("application/x-ndjson"),
			ContentEncoding: aws.String("gzip"),
		})
		if err != nil {
			return nil, s3Error(err)
		}
	}
	return nil, nil
}

// s3Error maps an SDK error: access and bucket errors halt the sink (to
// fix its configuration), everything else is retried. The SDK has
// retried throttling and 5xx itself already.
func s3Error(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "InvalidBucketName":
			return &Halted{Err: fmt.Errorf("s3: %w", err)}
		}
	}
	return &Unavailable{Err: fmt.Errorf("s3: %w", err)}
}

// keySafe keeps an org name from adding or escaping a level of the key.
func keySafe(s string) string {
	s = strings.NewReplacer("/", "_", "\\", "_").Replace(s)
	if s == "" || s == "." || s == ".." {
		return "_" + s
	}
	return s
}

func (s *s3sink) Close() error { return nil }
