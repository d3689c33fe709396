package sink

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/agenttrail/agenttrail"
)

// TestS3Archive: objects per org under prefix/org/YYYY/MM/DD/, named by
// first and last seq, gzipped NDJSON, through aws-sdk-go-v2 against
// gofakes3 (a maintained S3 test server); together they hold every event
// once, in seq order per org.
func TestS3Archive(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("trail"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()

	store, events := openStore(t, 1200)
	set := start(t, store, testConfig(t, Config{Type: TypeS3, URL: srv.URL, Bucket: "trail", Prefix: "audit/", Batch: BatchLimits{MaxEvents: 500, MaxWait: Duration(50 * time.Millisecond)}}))
	waitCaughtUp(t, set, "test")

	awsCfg, _ := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"))
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
	list, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("trail"), Prefix: aws.String("audit/")})
	if err != nil {
		t.Fatal(err)
	}
	perOrg := map[string][]int64{}
	for _, o := range list.Contents {
		key := *o.Key
		parts := strings.Split(key, "/")
		if len(parts) != 6 || !strings.HasPrefix(parts[5], "test-") || !strings.HasSuffix(key, ".ndjson.gz") {
			t.Fatalf("object key %q, want audit/ORG/YYYY/MM/DD/test-FIRST-LAST.ndjson.gz", key)
		}
		obj, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("trail"), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(obj.Body)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var e agenttrail.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if e.Org != parts[1] || e.ReceivedAt.UTC().Format("2006/01/02") != strings.Join(parts[2:5], "/") {
				t.Fatalf("event org %s received %v in object %s", e.Org, e.ReceivedAt, key)
			}
			perOrg[e.Org] = append(perOrg[e.Org], e.Seq)
		}
		io.Copy(io.Discard, zr)
		obj.Body.Close()
	}
	total := 0
	for org, seqs := range perOrg {
		var want []agenttrail.Event
		for _, e := range events {
			if e.Org == org {
				want = append(want, e)
			}
		}
		// Keys list in name order, not seq order: sort by seq and check
		// every event is there once.
		checkSeqs(t, sortedInts(seqs), want, false)
		total += len(seqs)
	}
	if total != len(events) {
		t.Errorf("objects hold %d events, want %d", total, len(events))
	}
}

func sortedInts(s []int64) []int64 {
	out := append([]int64(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
