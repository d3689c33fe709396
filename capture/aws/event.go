package aws

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// AWS is what an aws-proxy event holds under metadata.aws. The secret of
// the access key is never recorded.
type AWS struct {
	Service     string            `json:"service"`
	Operation   string            `json:"operation"`
	Region      string            `json:"region"`
	AccessKeyID string            `json:"access_key_id"`
	SessionTags map[string]string `json:"session_tags,omitempty"`
	ErrorCode   string            `json:"error_code,omitempty"`
	// ErrorMessage is the service's message for a failed call, or the
	// proxy's for one it refused.
	ErrorMessage string `json:"error_message,omitempty"`
}

// record turns x into one event and hands it to the recorder, redacted.
func (p *Proxy) record(r *http.Request, x *exchange) {
	op := x.call.Operation
	if op == "" {
		op = r.Method + " " + r.URL.Path
	}
	service := x.service
	if service == "" {
		service = "unknown"
	}
	e := agenttrail.Event{
		Time:         x.start,
		DurationMS:   float64(p.now().Sub(x.start).Microseconds()) / 1000,
		Source:       agenttrail.SourceAWS,
		Action:       service + ":" + op,
		ResourceType: x.call.ResourceType,
		ResourceID:   x.call.ResourceID,
		StatusCode:   x.status,
	}
	if e.ResourceType == "" {
		e.ResourceType = service
	}
	x.actor.Apply(&e)
	x.span.Apply(&e)
	// The proxy's own refusals (unknown key, bad signature, skewed clock)
	// are 403s as AWS answers them, so denied like the service's
	// AccessDenied.
	e.Result = capture.ProxiedResult(x.broken, false, x.status)
	e.Description = x.describe(e.Action)
	m := AWS{
		Service: x.service, Operation: x.call.Operation, Region: x.region,
		AccessKeyID: x.accessKeyID, SessionTags: x.tags, ErrorCode: x.errorCode, ErrorMessage: x.errorMsg,
	}
	if err := e.SetMetadata("aws", m); err != nil {
		p.log.Error("aws proxy: encode metadata", "err", err)
	}
	p.rec.Record(context.WithoutCancel(r.Context()), e)
}

// describe is one short sentence: the call, what it acted on, and why it
// did not succeed when it did not.
func (x *exchange) describe(action string) string {
	var b strings.Builder
	b.WriteString(action)
	if x.call.ResourceID != "" {
		b.WriteString(" " + x.call.ResourceID)
	}
	if x.region != "" {
		b.WriteString(" in " + x.region)
	}
	switch {
	case x.errMsg != "":
		b.WriteString(": " + x.errMsg)
	case x.refused:
		fmt.Fprintf(&b, ": refused by the proxy: %s %s", x.errorCode, x.errorMsg)
	case x.errorCode != "" || x.status >= 400:
		fmt.Fprintf(&b, ": %d %s", x.status, strings.TrimSpace(x.errorCode+" "+x.errorMsg))
	}
	return b.String()
}
