package aws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/servertest"
)

// TestSDKEndToEnd drives the proxy with the official AWS SDK clients holding
// only proxy-issued keys, in front of a fake AWS that accepts only requests
// signed with the real keys, recording through the SDK's Recorder into a
// real server on SQLite, and checks the stored events.
func TestSDKEndToEnd(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	rec := capturetest.Recorder(t, srv.URL)

	fake := newFakeAWS(t)
	up := httptest.NewServer(fake)
	defer up.Close()
	proxy, _ := startProxy(t, up.URL, Config{Recorder: rec, Logger: logger})
	cl := newClients(proxy, agentKeyID, agentSecret)

	if _, err := cl.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: sdkaws.String("reports"), Key: sdkaws.String("2026/q2 draft.csv"), Body: bytes.NewReader([]byte("x,y\n3,4\n"))}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	obj, err := cl.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: sdkaws.String("reports"), Key: sdkaws.String("2026/q2 draft.csv")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if string(got) != "x,y\n3,4\n" {
		t.Fatalf("GetObject body %q", got)
	}
	list, err := cl.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: sdkaws.String("reports"), Prefix: sdkaws.String("2026/")})
	if err != nil || len(list.Contents) != 2 {
		t.Fatalf("ListObjectsV2 = %v, %v; want 2 objects", list, err)
	}
	if _, err := cl.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: sdkaws.String("reports"), Key: sdkaws.String("2026/q2 draft.csv")}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	_, err = cl.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: sdkaws.String("reports"), Key: sdkaws.String("2026/q2 draft.csv")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchKey" {
		t.Fatalf("GetObject after delete: %v, want NoSuchKey", err)
	}
	id, err := cl.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || sdkaws.ToString(id.Account) != "123456789012" {
		t.Fatalf("GetCallerIdentity = %v, %v", id, err)
	}
	item, err := cl.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: sdkaws.String("Users"), Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "u-1"}}})
	if err != nil || item.Item["name"].(*ddbtypes.AttributeValueMemberS).Value != "Ada" {
		t.Fatalf("GetItem = %v, %v", item, err)
	}
	if _, err := cl.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: sdkaws.String("Users"), Item: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "u-2"}}}); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
	if _, err := cl.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: sdkaws.String("Missing"), Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "u-1"}}}); err == nil {
		t.Fatal("GetItem on a missing table: no error")
	}
	if _, err := cl.s3.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	// A key the proxy never issued is refused before anything goes upstream.
	seenBefore, _ := fake.counts()
	_, err = newClients(proxy, "AKIAUNKNOWNKEY000001", "whatever").s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidAccessKeyId" {
		t.Fatalf("ListBuckets with an unknown key: %v, want InvalidAccessKeyId", err)
	}
	if seen, refused := fake.counts(); seen != seenBefore || refused != 0 {
		t.Fatalf("upstream saw %d requests (%d before the unknown key), refused %d signatures", seen, seenBefore, refused)
	}

	type want struct {
		action, resourceType, resourceID string
		status                           int
		result                           agenttrail.Result
		errorCode                        string
	}
	const obj2 = "arn:aws:s3:::reports/2026/q2 draft.csv"
	const users = "arn:aws:dynamodb:us-east-1:" + account + ":table/Users"
	wants := []want{
		{"s3:PutObject", "s3:object", obj2, 200, agenttrail.ResultSuccess, ""},
		{"s3:GetObject", "s3:object", obj2, 200, agenttrail.ResultSuccess, ""},
		{"s3:ListObjectsV2", "s3:bucket", "arn:aws:s3:::reports", 200, agenttrail.ResultSuccess, ""},
		{"s3:DeleteObject", "s3:object", obj2, 204, agenttrail.ResultSuccess, ""},
		{"s3:GetObject", "s3:object", obj2, 404, agenttrail.ResultFailure, "NoSuchKey"},
		{"sts:GetCallerIdentity", "sts:account", account, 200, agenttrail.ResultSuccess, ""},
		{"dynamodb:GetItem", "dynamodb:table", users, 200, agenttrail.ResultSuccess, ""},
		{"dynamodb:PutItem", "dynamodb:table", users, 200, agenttrail.ResultSuccess, ""},
		{"dynamodb:GetItem", "dynamodb:table", "arn:aws:dynamodb:us-east-1:" + account + ":table/Missing", 400, agenttrail.ResultFailure, "ResourceNotFoundException"},
		{"s3:ListBuckets", "s3:account", account, 200, agenttrail.ResultSuccess, ""},
		{"s3:ListBuckets", "s3:account", "", 403, agenttrail.ResultDenied, "InvalidAccessKeyId"},
	}
	events := capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{Source: []string{agenttrail.SourceAWS}}, len(wants))
	// Each event is recorded when its response has gone out, so a client's
	// next call may be recorded first: order by start.
	slices.SortStableFunc(events, func(a, b agenttrail.Event) int { return a.Time.Compare(b.Time) })
	for i, e := range events {
		w, m := wants[i], awsMeta(t, e)
		if e.Action != w.action || e.ResourceType != w.resourceType || e.ResourceID != w.resourceID || e.StatusCode != w.status || e.Result != w.result || m.ErrorCode != w.errorCode {
			t.Errorf("event %d = %q %q %q, %d %s code %q; want %q %q %q, %d %s code %q",
				i, e.Action, e.ResourceType, e.ResourceID, e.StatusCode, e.Result, m.ErrorCode, w.action, w.resourceType, w.resourceID, w.status, w.result, w.errorCode)
		}
		if !strings.HasPrefix(e.Description, w.action) || (w.errorCode != "" && !strings.Contains(e.Description, w.errorCode)) {
			t.Errorf("event %d description %q, want the action and the error code", i, e.Description)
		}
		if e.Source != agenttrail.SourceAWS || m.Region != "us-east-1" || e.ProducerID == "" ||
			m.Operation != strings.SplitN(w.action, ":", 2)[1] || m.Service != strings.SplitN(w.action, ":", 2)[0] {
			t.Errorf("event %d: source %q, type %q, metadata %+v, producer %q", i, e.Source, e.ResourceType, m, e.ProducerID)
		}
		b, _ := json.Marshal(e)
		for _, secret := range []string{agentSecret, realSecret, realKeyID, realToken} {
			if strings.Contains(string(b), secret) {
				t.Errorf("event %d holds %q: %s", i, secret, b)
			}
		}
		if i == len(wants)-1 {
			// The key id is kept (it is not a secret): it says which key
			// the refused request was signed with.
			if e.ActorID != "anonymous" || m.AccessKeyID != "AKIAUNKNOWNKEY000001" || m.SessionTags != nil {
				t.Errorf("refused event by %q, key %q, tags %v; want anonymous, the unknown key, no tags", e.ActorID, m.AccessKeyID, m.SessionTags)
			}
			continue
		}
		if e.ActorID != "agent-data" || e.Project != "etl" || m.AccessKeyID != agentKeyID ||
			!maps.Equal(m.SessionTags, map[string]string{"team": "payments", "env": "staging"}) {
			t.Errorf("event %d by %q project %q, key %q, tags %v", i, e.ActorID, e.Project, m.AccessKeyID, m.SessionTags)
		}
	}
}
