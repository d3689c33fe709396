package aws

import (
	"context"
	"net/http"

	"github.com/agenttrail/agenttrail"
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
		ResourceType: "aws",
		ResourceID:   x.call.ResourceID,
		StatusCode:   x.status,
		Description:  x.errMsg,
	}
	x.actor.Apply(&e)
	switch {
	case x.broken:
		e.Result = agenttrail.ResultError
	case x.status >= 400 || x.status == 0:
		e.Result = agenttrail.ResultFailure
	default:
		e.Result = agenttrail.ResultSuccess
	}
	m := AWS{
		Service: x.service, Operation: x.call.Operation, Region: x.region,
		AccessKeyID: x.accessKeyID, SessionTags: x.tags, ErrorCode: x.errorCode,
	}
	if err := e.SetMetadata("aws", m); err != nil {
		p.log.Error("aws proxy: encode metadata", "err", err)
	}
	p.rec.Record(context.WithoutCancel(r.Context()), e)
}
