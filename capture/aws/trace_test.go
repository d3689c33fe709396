package aws

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// TestTraceContext: the proxy records the agent's trace with a span of its
// own and forwards a traceparent naming that span, signed with the real key
// (the fake AWS checks the signature over it); a malformed traceparent
// starts a new trace.
func TestTraceContext(t *testing.T) {
	up := &capturetest.Headers{Next: newFakeAWS(t)}
	srv := httptest.NewServer(up)
	defer srv.Close()
	proxy, rec := startProxy(t, srv.URL, Config{})
	for i, tc := range capturetest.TraceCases {
		t.Run(tc.Name, func(t *testing.T) {
			cl := newClients(proxy, agentKeyID, agentSecret)
			_, err := cl.sts.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
				for k, vv := range capturetest.TraceHeaders(tc.Traceparent, tc.Session) {
					o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(k, vv[0]))
				}
			})
			if err != nil {
				t.Fatalf("GetCallerIdentity: %v", err)
			}
			e := rec.Wait(t, i+1)[i]
			capturetest.CheckTrace(t, e, tc.Traceparent, up.Last())
			if e.SessionID != tc.WantSession("") {
				t.Errorf("session_id = %q, want %q", e.SessionID, tc.Session)
			}
		})
	}
}
