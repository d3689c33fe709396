package export

import (
	"bufio"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// OCSFVersion is the OCSF schema version the ocsf format follows.
const OCSFVersion = "1.8.0"

// The OCSF class every event maps to: API Activity (6003) in the
// Application Activity category (6).
const (
	ocsfClassUID    = 6003
	ocsfCategoryUID = 6
)

// ocsfWriter writes one OCSF 1.x JSON object per line.
//
// Every event maps to API Activity, whatever its surface: an agent's tool
// call, shell command or LLM request is an operation (api.operation = the
// action) on a service (api.service.name = the source), which keeps one
// consistent class for SIEM rules. The mapping:
//
//	time                  time (epoch ms); metadata.original_time (RFC 3339)
//	received_at           metadata.logged_time (epoch ms)
//	id, seq, org          metadata.uid, metadata.sequence, metadata.tenant_uid
//	action                api.operation; activity_id from its verb (below)
//	source                api.service.name
//	actor_id/name/type    actor.user.uid/name/type (+ type_id: user 1, system 3, agent 99)
//	resource_type/id      resources[0].type/uid
//	result                status/status_id (success 1; failure, denied and error 2),
//	                      status_detail (the agenttrail result), severity_id
//	status_code           status_code (a string, as OCSF has it)
//	duration_ms           duration
//	description           message
//	producer_id           src_endpoint.uid: the SDK instance or proxy that
//	                      observed the action (events carry no source address)
//	metadata.http         dst_endpoint.hostname/port for the forward proxy
//	trace_id              trace.uid, with the trace profile in metadata.profiles
//	span_id, parent_span_id  trace.span.uid/parent_uid; span.start_time and
//	                      end_time are time and time + duration_ms,
//	                      span.operation the action, span.service.name the source
//	session_id            metadata.correlation_uid: what ties a task's events
//	everything else       unmapped: project, producer_seq, the raw metadata
//	                      (and parent_span_id when there is no span_id)
//
// activity_id is Create (1), Read (2), Update (3) or Delete (4) when the
// action's verb says so — an HTTP method, a Kubernetes verb, an AWS
// operation prefix — and Other (99) otherwise.
type ocsfWriter struct {
	bw      *bufio.Writer
	enc     *json.Encoder
	product ocsfProduct
}

func newOCSF(bw *bufio.Writer, version string) *ocsfWriter {
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &ocsfWriter{bw: bw, enc: enc, product: ocsfProduct{Name: "agenttrail", VendorName: "agenttrail", Version: version}}
}

func (w *ocsfWriter) Write(e *agenttrail.Event) error { return w.enc.Encode(ocsfEventOf(e, w.product)) }
func (w *ocsfWriter) Flush() error                    { return w.bw.Flush() }
func (w *ocsfWriter) Close() error                    { return w.bw.Flush() }

// OCSFEvent is one event in the ocsf format. Its fields are OCSF attribute
// names; tests and consumers decode into it.
type OCSFEvent struct {
	ActivityID   int            `json:"activity_id"`
	ActivityName string         `json:"activity_name"`
	CategoryUID  int            `json:"category_uid"`
	CategoryName string         `json:"category_name"`
	ClassUID     int            `json:"class_uid"`
	ClassName    string         `json:"class_name"`
	TypeUID      int            `json:"type_uid"`
	TypeName     string         `json:"type_name"`
	Time         int64          `json:"time"`
	SeverityID   int            `json:"severity_id"`
	Severity     string         `json:"severity"`
	StatusID     int            `json:"status_id"`
	Status       string         `json:"status"`
	StatusDetail string         `json:"status_detail,omitempty"`
	StatusCode   string         `json:"status_code,omitempty"`
	Duration     int64          `json:"duration,omitempty"`
	Message      string         `json:"message,omitempty"`
	Actor        ocsfActor      `json:"actor"`
	API          ocsfAPI        `json:"api"`
	Resources    []ocsfResource `json:"resources,omitempty"`
	SrcEndpoint  *ocsfEndpoint  `json:"src_endpoint,omitempty"`
	DstEndpoint  *ocsfEndpoint  `json:"dst_endpoint,omitempty"`
	Trace        *ocsfTrace     `json:"trace,omitempty"`
	Metadata     ocsfMetadata   `json:"metadata"`
	Unmapped     map[string]any `json:"unmapped,omitempty"`
}

// ocsfTrace is the OCSF trace object (the trace profile).
type ocsfTrace struct {
	UID  string    `json:"uid"`
	Span *ocsfSpan `json:"span,omitempty"`
}

// ocsfSpan is the OCSF span object; start_time and end_time are required.
type ocsfSpan struct {
	UID       string       `json:"uid"`
	ParentUID string       `json:"parent_uid,omitempty"`
	StartTime int64        `json:"start_time"`
	EndTime   int64        `json:"end_time"`
	Operation string       `json:"operation,omitempty"`
	Service   *ocsfService `json:"service,omitempty"`
}

type ocsfActor struct {
	User ocsfUser `json:"user"`
}

type ocsfUser struct {
	UID    string `json:"uid"`
	Name   string `json:"name,omitempty"`
	Type   string `json:"type"`
	TypeID int    `json:"type_id"`
}

type ocsfAPI struct {
	Operation string      `json:"operation"`
	Service   ocsfService `json:"service"`
}

type ocsfService struct {
	Name string `json:"name"`
}

type ocsfResource struct {
	Type string `json:"type,omitempty"`
	UID  string `json:"uid,omitempty"`
}

type ocsfEndpoint struct {
	UID      string `json:"uid,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Port     int    `json:"port,omitempty"`
}

type ocsfMetadata struct {
	Product        ocsfProduct `json:"product"`
	Version        string      `json:"version"`
	UID            string      `json:"uid"`
	OriginalTime   string      `json:"original_time,omitempty"`
	LoggedTime     int64       `json:"logged_time,omitempty"`
	Sequence       int64       `json:"sequence,omitempty"`
	TenantUID      string      `json:"tenant_uid,omitempty"`
	CorrelationUID string      `json:"correlation_uid,omitempty"`
	Profiles       []string    `json:"profiles,omitempty"`
}

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

var ocsfActivityNames = [...]string{0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete"}

func ocsfEventOf(e *agenttrail.Event, product ocsfProduct) OCSFEvent {
	act := activityOf(e)
	actName := "Other"
	if act < len(ocsfActivityNames) {
		actName = ocsfActivityNames[act]
	}
	sev := severityOf(e.Result)
	o := OCSFEvent{
		ActivityID: act, ActivityName: actName,
		CategoryUID: ocsfCategoryUID, CategoryName: "Application Activity",
		ClassUID: ocsfClassUID, ClassName: "API Activity",
		TypeUID: ocsfClassUID*100 + act, TypeName: "API Activity: " + actName,
		Time:       e.Time.UnixMilli(),
		SeverityID: sev.ocsfID, Severity: sev.ocsfName,
		StatusDetail: string(e.Result),
		Duration:     int64(e.DurationMS),
		Message:      e.Description,
		Actor:        ocsfActor{User: ocsfUserOf(e)},
		API:          ocsfAPI{Operation: e.Action, Service: ocsfService{Name: e.Source}},
		Metadata: ocsfMetadata{
			Product: product, Version: OCSFVersion, UID: e.ID,
			Sequence: e.Seq, TenantUID: e.Org, CorrelationUID: e.SessionID,
		},
	}
	switch e.Result {
	case agenttrail.ResultSuccess:
		o.StatusID, o.Status = 1, "Success"
	case agenttrail.ResultFailure, agenttrail.ResultDenied, agenttrail.ResultError:
		o.StatusID, o.Status = 2, "Failure"
	default:
		o.StatusID, o.Status = 0, "Unknown"
	}
	if e.StatusCode != 0 {
		o.StatusCode = strconv.Itoa(e.StatusCode)
	}
	if !e.Time.IsZero() {
		o.Metadata.OriginalTime = e.Time.UTC().Format(time.RFC3339Nano)
	}
	if !e.ReceivedAt.IsZero() {
		o.Metadata.LoggedTime = e.ReceivedAt.UnixMilli()
	}
	if e.ResourceType != "" || e.ResourceID != "" {
		o.Resources = []ocsfResource{{Type: e.ResourceType, UID: e.ResourceID}}
	}
	if e.ProducerID != "" {
		o.SrcEndpoint = &ocsfEndpoint{UID: e.ProducerID}
	}
	if e.Source == agenttrail.SourceEgress {
		o.DstEndpoint = destinationOf(e)
	}
	u := map[string]any{}
	if e.TraceID != "" {
		o.Trace = &ocsfTrace{UID: e.TraceID}
		o.Metadata.Profiles = []string{"trace"}
		if e.SpanID != "" {
			start := e.Time.UnixMilli()
			o.Trace.Span = &ocsfSpan{UID: e.SpanID, ParentUID: e.ParentSpanID, StartTime: start,
				EndTime: start + int64(math.Ceil(e.DurationMS)), Operation: e.Action, Service: &ocsfService{Name: e.Source}}
		} else if e.ParentSpanID != "" {
			u["parent_span_id"] = e.ParentSpanID
		}
	}
	if e.Project != "" {
		u["project"] = e.Project
	}
	if e.ProducerSeq != 0 {
		u["producer_seq"] = e.ProducerSeq
	}
	if len(e.Metadata) > 0 && json.Valid(e.Metadata) {
		u["metadata"] = e.Metadata // as stored: no decoding and encoding again
	}
	if len(u) > 0 {
		o.Unmapped = u
	}
	return o
}

func ocsfUserOf(e *agenttrail.Event) ocsfUser {
	u := ocsfUser{UID: e.ActorID, Name: e.ActorName}
	switch e.ActorType {
	case agenttrail.ActorUser:
		u.Type, u.TypeID = "User", 1
	case agenttrail.ActorSystem:
		u.Type, u.TypeID = "System", 3
	case agenttrail.ActorAgent:
		u.Type, u.TypeID = "Agent", 99
	default:
		u.Type, u.TypeID = "Unknown", 0
	}
	return u
}

// destinationOf returns the upstream of a forward-proxy event, from
// metadata.http, or nil.
func destinationOf(e *agenttrail.Event) *ocsfEndpoint {
	var m struct {
		HTTP struct {
			Domain string `json:"domain"`
			Port   int    `json:"port"`
		} `json:"http"`
	}
	if json.Unmarshal(e.Metadata, &m) != nil || m.HTTP.Domain == "" {
		return nil
	}
	return &ocsfEndpoint{Hostname: m.HTTP.Domain, Port: m.HTTP.Port}
}

// activityOf reads the OCSF activity from the verb of the action: an HTTP
// method ("GET /api/v1/pods" from the Kubernetes and forward proxies), an
// AWS operation ("s3:GetObject"), or a sandbox operation.
func activityOf(e *agenttrail.Event) int {
	if method, _, ok := strings.Cut(e.Action, " "); ok {
		switch method {
		case "GET", "HEAD", "OPTIONS":
			return 2
		case "POST":
			return 1
		case "PUT", "PATCH":
			return 3
		case "DELETE":
			return 4
		}
	}
	switch e.Source {
	case agenttrail.SourceAWS:
		_, op, _ := strings.Cut(e.Action, ":")
		for _, p := range []struct {
			prefix string
			id     int
		}{
			{"Get", 2}, {"List", 2}, {"Describe", 2}, {"Head", 2},
			{"Create", 1}, {"Put", 1}, {"Run", 1},
			{"Update", 3}, {"Modify", 3},
			{"Delete", 4}, {"Terminate", 4},
		} {
			if strings.HasPrefix(op, p.prefix) {
				return p.id
			}
		}
	case agenttrail.SourceSandbox:
		switch e.Action {
		case "create":
			return 1
		case "file_read":
			return 2
		case "file_write":
			return 3
		case "remove", "file_delete":
			return 4
		}
	}
	return 99
}
