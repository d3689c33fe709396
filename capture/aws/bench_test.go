package aws

import (
	"context"
	"io"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// BenchmarkAddedLatency measures the latency the proxy adds to one SDK
// call, proxied (verify, re-sign, forward, record) and direct (the same SDK
// signing with the real key) in the same run, and reports p50 and p99 of
// each and of the difference. S3GetObject streams its body through;
// DynamoDBGetItem has its body read and hashed by the proxy.
func BenchmarkAddedLatency(b *testing.B) {
	up := httptest.NewServer(newFakeAWS(b))
	defer up.Close()
	proxy, rec := startProxy(b, up.URL, Config{})
	ctx := context.Background()
	var direct clients
	direct.s3 = s3.NewFromConfig(sdkaws.Config{
		Region: "us-east-1", BaseEndpoint: sdkaws.String(up.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(realKeyID, realSecret, realToken),
	}, func(o *s3.Options) { o.UsePathStyle = true })
	direct.ddb = dynamodb.NewFromConfig(sdkaws.Config{
		Region: "us-east-1", BaseEndpoint: sdkaws.String(up.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(realKeyID, realSecret, realToken),
	})
	proxied := newClients(proxy, agentKeyID, agentSecret)

	getObject := func(c clients) func() {
		return func() {
			out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: sdkaws.String("reports"), Key: sdkaws.String("2026/q1.csv")})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, out.Body)
			out.Body.Close()
		}
	}
	getItem := func(c clients) func() {
		return func() {
			_, err := c.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: sdkaws.String("Users"),
				Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "u-1"}}})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	cases := []struct {
		name            string
		direct, proxied func()
	}{
		{"S3GetObject", getObject(direct), getObject(proxied)},
		{"DynamoDBGetItem", getItem(direct), getItem(proxied)},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			bc.direct() // warm the connections
			bc.proxied()
			var d, p []time.Duration
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				bc.direct()
				t1 := time.Now()
				bc.proxied()
				d, p = append(d, t1.Sub(t0)), append(p, time.Since(t1))
			}
			b.StopTimer()
			report(b, d, p)
		})
	}
	if len(rec.wait(b, 1)) == 0 {
		b.Fatal("no events recorded")
	}
}

// report adds p50 and p99 of direct, proxied and added latency in
// microseconds.
func report(b *testing.B, direct, proxied []time.Duration) {
	q := func(s []time.Duration, p float64) float64 {
		s = slices.Clone(s)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))].Nanoseconds()) / 1e3
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p99", 0.99}} {
		dq, pq := q(direct, p.q), q(proxied, p.q)
		b.ReportMetric(dq, p.name+"-direct-µs")
		b.ReportMetric(pq, p.name+"-proxied-µs")
		b.ReportMetric(pq-dq, p.name+"-added-µs")
	}
	b.ReportMetric(0, "ns/op")
}
