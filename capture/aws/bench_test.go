package aws

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/agenttrail/agenttrail/capture/capturetest"
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

	getObject := func(c clients) func() error {
		return func() error {
			out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: sdkaws.String("reports"), Key: sdkaws.String("2026/q1.csv")})
			if err != nil {
				return err
			}
			io.Copy(io.Discard, out.Body)
			return out.Body.Close()
		}
	}
	getItem := func(c clients) func() error {
		return func() error {
			_, err := c.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: sdkaws.String("Users"),
				Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "u-1"}}})
			return err
		}
	}
	cases := []struct {
		name            string
		direct, proxied func() error
	}{
		{"S3GetObject", getObject(direct), getObject(proxied)},
		{"DynamoDBGetItem", getItem(direct), getItem(proxied)},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) { capturetest.Latency(b, bc.direct, bc.proxied) })
	}
	if len(rec.Wait(b, 1)) == 0 {
		b.Fatal("no events recorded")
	}
}
