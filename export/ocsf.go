package export

import (
	"bufio"
	"cmp"
	"encoding/json"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// OCSFVersion is the OCSF schema version the ocsf format follows.
const OCSFVersion = "1.8.0"

// ocsfWriter writes one OCSF 1.8.0 JSON object per line. Each event maps
// to the class of what its surface observed:
//
//	shell                       Process Activity (1007, System): Launch
//	sandbox file operations     File System Activity (1001, System)
//	forward-proxy               HTTP Activity (4002, Network): the method
//	every other source          API Activity (6003, Application): the
//	                            proxies (mcp-tool, k8s-proxy, aws-proxy,
//	                            llm-proxy, sandbox container calls), agent,
//	                            audit and custom sources
//
// LLM calls (metadata.llm with a model) carry the ai_operation profile:
// ai_model (name, ai_provider) and message_context (prompt_tokens,
// completion_tokens, total_tokens, service). The attributes every class
// shares:
//
//	time                  time (epoch ms); metadata.original_time (RFC 3339)
//	received_at           metadata.logged_time (epoch ms)
//	id, seq, org          metadata.uid, metadata.sequence, metadata.tenant_uid
//	action                api.operation (API Activity); activity_id from its
//	                      verb, Other (99) when it has none
//	source                api.service.name; metadata.log_name
//	actor_id/name/type    actor.user.uid/name/type (+ type_id: user 1,
//	                      system 3, agent 99 "Agent")
//	resource_type/id      resources[0].type/uid (API Activity)
//	result                status/status_id (success 1; failure, denied and
//	                      error 2), status_detail (the agenttrail result),
//	                      severity_id
//	status_code           status_code (a string, as OCSF has it);
//	                      http_response.code for the forward proxy
//	duration_ms           duration
//	description           message
//	producer_id           src_endpoint.uid: the SDK instance or proxy that
//	                      observed the action (events carry no source
//	                      address); src_endpoint.name is the actor when
//	                      there is no producer, as API Activity requires one
//	trace_id, span_id     trace.uid, trace.span (the trace profile)
//	session_id            metadata.correlation_uid: what ties a task's events
//	everything else       unmapped: project, producer_seq, the raw metadata
//	                      (and parent_span_id when there is no span_id)
//
// OCSF integers (integer_t: metadata.sequence, token counts, exit_code) are
// 32-bit; a value past that is left out of its attribute and kept in
// unmapped (seq) or in unmapped.metadata (tokens, as stored).
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

// The OCSF classes events map to, with their categories.
var (
	ocsfAPIActivity     = ocsfClass{uid: 6003, name: "API Activity", categoryUID: 6, category: "Application Activity"}
	ocsfProcessActivity = ocsfClass{uid: 1007, name: "Process Activity", categoryUID: 1, category: "System Activity"}
	ocsfFileActivity    = ocsfClass{uid: 1001, name: "File System Activity", categoryUID: 1, category: "System Activity"}
	ocsfHTTPActivity    = ocsfClass{uid: 4002, name: "HTTP Activity", categoryUID: 4, category: "Network Activity"}
)

type ocsfClass struct {
	uid, categoryUID int
	name, category   string
}

// OCSFEvent is one event in the ocsf format. Its fields are OCSF attribute
// names; tests and consumers decode into it. Which of the class-specific
// fields are set depends on ClassUID.
type OCSFEvent struct {
	ActivityID     int                 `json:"activity_id"`
	ActivityName   string              `json:"activity_name"`
	CategoryUID    int                 `json:"category_uid"`
	CategoryName   string              `json:"category_name"`
	ClassUID       int                 `json:"class_uid"`
	ClassName      string              `json:"class_name"`
	TypeUID        int                 `json:"type_uid"`
	TypeName       string              `json:"type_name"`
	Time           int64               `json:"time"`
	SeverityID     int                 `json:"severity_id"`
	Severity       string              `json:"severity"`
	StatusID       int                 `json:"status_id"`
	Status         string              `json:"status"`
	StatusDetail   string              `json:"status_detail,omitempty"`
	StatusCode     string              `json:"status_code,omitempty"`
	Duration       int64               `json:"duration,omitempty"`
	Message        string              `json:"message,omitempty"`
	Actor          ocsfActor           `json:"actor"`
	API            *ocsfAPI            `json:"api,omitempty"`
	Resources      []ocsfResource      `json:"resources,omitempty"`
	SrcEndpoint    *ocsfEndpoint       `json:"src_endpoint,omitempty"`
	DstEndpoint    *ocsfEndpoint       `json:"dst_endpoint,omitempty"`
	Device         *ocsfDevice         `json:"device,omitempty"`
	Process        *ocsfProcess        `json:"process,omitempty"`
	ExitCode       *int64              `json:"exit_code,omitempty"`
	File           *ocsfFile           `json:"file,omitempty"`
	FileResult     *ocsfFile           `json:"file_result,omitempty"`
	HTTPRequest    *ocsfHTTPRequest    `json:"http_request,omitempty"`
	HTTPResponse   *ocsfHTTPResponse   `json:"http_response,omitempty"`
	Traffic        *ocsfTraffic        `json:"traffic,omitempty"`
	AIModel        *ocsfAIModel        `json:"ai_model,omitempty"`
	MessageContext *ocsfMessageContext `json:"message_context,omitempty"`
	Trace          *ocsfTrace          `json:"trace,omitempty"`
	Metadata       ocsfMetadata        `json:"metadata"`
	Unmapped       map[string]any      `json:"unmapped,omitempty"`
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
	Name     string `json:"name,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Port     int    `json:"port,omitempty"`
}

// ocsfDevice is the device of a System Activity event: the host a shell
// command ran on (type Server) or the sandbox container (type Virtual).
type ocsfDevice struct {
	TypeID   int    `json:"type_id"`
	Type     string `json:"type"`
	UID      string `json:"uid,omitempty"`
	Name     string `json:"name,omitempty"`
	Hostname string `json:"hostname,omitempty"`
}

// ocsfProcess is the command a shell event ran. Shell events carry no pid;
// uid is the event id, which names that one execution.
type ocsfProcess struct {
	UID              string `json:"uid"`
	Name             string `json:"name,omitempty"`
	CmdLine          string `json:"cmd_line,omitempty"`
	WorkingDirectory string `json:"working_directory,omitempty"`
}

type ocsfFile struct {
	Name   string `json:"name"`
	Path   string `json:"path,omitempty"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
	Size   *int64 `json:"size,omitempty"`
}

type ocsfHTTPRequest struct {
	HTTPMethod string   `json:"http_method,omitempty"`
	URL        *ocsfURL `json:"url,omitempty"`
}

type ocsfURL struct {
	URLString string `json:"url_string,omitempty"`
	Scheme    string `json:"scheme,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	Port      int    `json:"port,omitempty"`
	Path      string `json:"path,omitempty"`
}

type ocsfHTTPResponse struct {
	Code int `json:"code"`
}

type ocsfTraffic struct {
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
}

// ocsfAIModel is the ai_model object of the ai_operation profile.
type ocsfAIModel struct {
	Name       string `json:"name"`
	AIProvider string `json:"ai_provider"`
}

// ocsfMessageContext is the message_context object of the ai_operation
// profile: the token counts of one LLM call.
type ocsfMessageContext struct {
	Service          ocsfService `json:"service"`
	PromptTokens     *int64      `json:"prompt_tokens,omitempty"`
	CompletionTokens *int64      `json:"completion_tokens,omitempty"`
	TotalTokens      *int64      `json:"total_tokens,omitempty"`
}

type ocsfMetadata struct {
	Product        ocsfProduct `json:"product"`
	Version        string      `json:"version"`
	UID            string      `json:"uid"`
	LogName        string      `json:"log_name,omitempty"`
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

// ocsfInt reports whether v fits an OCSF integer_t (32 bits).
func ocsfInt(v int64) bool { return v >= math.MinInt32 && v <= math.MaxInt32 }

// ocsfEventOf maps one event. It is the one OCSF encoder: exports, sinks
// and the console download all write through the ocsf Writer.
func ocsfEventOf(e *agenttrail.Event, product ocsfProduct) OCSFEvent {
	sev := severityOf(e.Result)
	o := OCSFEvent{
		Time:         e.Time.UnixMilli(),
		SeverityID:   sev.ocsfID,
		Severity:     sev.ocsfName,
		StatusDetail: string(e.Result),
		Duration:     int64(e.DurationMS),
		Message:      e.Description,
		Actor:        ocsfActor{User: ocsfUserOf(e)},
		Metadata: ocsfMetadata{
			Product: product, Version: OCSFVersion, UID: e.ID, LogName: e.Source,
			TenantUID: e.Org, CorrelationUID: e.SessionID,
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
	u := map[string]any{}
	if ocsfInt(e.Seq) {
		o.Metadata.Sequence = e.Seq
	} else {
		u["seq"] = e.Seq
	}
	var (
		class ocsfClass
		act   int
		name  string
	)
	switch {
	case e.Source == agenttrail.SourceShell:
		class, act, name = ocsfProcessActivity, 1, "Launch"
		ocsfShell(e, &o)
	case e.Source == agenttrail.SourceSandbox && ocsfSandboxFile(e, &o):
		class = ocsfFileActivity
		act, name = fileActivityOf(e.Action)
	case e.Source == agenttrail.SourceEgress:
		class = ocsfHTTPActivity
		act, name = httpActivityOf(e.Action)
		ocsfHTTP(e, &o)
		o.Metadata.Profiles = append(o.Metadata.Profiles, "host") // the actor
	default:
		class = ocsfAPIActivity
		act = activityOf(e)
		name = "Other"
		if act < len(ocsfActivityNames) {
			name = ocsfActivityNames[act]
		}
		o.API = &ocsfAPI{Operation: e.Action, Service: ocsfService{Name: e.Source}}
		if e.ResourceID != "" {
			o.Resources = []ocsfResource{{Type: e.ResourceType, UID: e.ResourceID}}
		} else if e.ResourceType != "" {
			u["resource_type"] = e.ResourceType // a resource needs a uid or name
		}
		if o.SrcEndpoint == nil {
			o.SrcEndpoint = &ocsfEndpoint{Name: e.ActorID}
		}
		if l, ok := e.LLM(); ok && l.Model != "" {
			ocsfAI(e, l, &o)
		}
	}
	o.ClassUID, o.ClassName, o.CategoryUID, o.CategoryName = class.uid, class.name, class.categoryUID, class.category
	o.ActivityID, o.ActivityName = act, name
	o.TypeUID, o.TypeName = class.uid*100+act, class.name+": "+name
	if e.ProducerID != "" && o.Device != nil {
		u["producer_id"] = e.ProducerID // System Activity has no src_endpoint
	} else if e.ProducerID != "" {
		if o.SrcEndpoint == nil {
			o.SrcEndpoint = &ocsfEndpoint{}
		}
		o.SrcEndpoint.UID, o.SrcEndpoint.Name = e.ProducerID, ""
	}
	if e.TraceID != "" && class != ocsfFileActivity && class != ocsfProcessActivity {
		// The trace profile is in API and HTTP Activity only; the other
		// classes keep the ids in unmapped.
		o.Trace = &ocsfTrace{UID: e.TraceID}
		o.Metadata.Profiles = append(o.Metadata.Profiles, "trace")
		if e.SpanID != "" {
			start := e.Time.UnixMilli()
			o.Trace.Span = &ocsfSpan{UID: e.SpanID, ParentUID: e.ParentSpanID, StartTime: start,
				EndTime: start + int64(math.Ceil(e.DurationMS)), Operation: e.Action, Service: &ocsfService{Name: e.Source}}
		} else if e.ParentSpanID != "" {
			u["parent_span_id"] = e.ParentSpanID
		}
	} else if e.TraceID != "" {
		u["trace_id"] = e.TraceID
		if e.SpanID != "" {
			u["span_id"] = e.SpanID
		}
		if e.ParentSpanID != "" {
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

// ocsfShell fills in a shell event's process, exit code and device from
// metadata.shell.
func ocsfShell(e *agenttrail.Event, o *OCSFEvent) {
	var m struct {
		Shell struct {
			Command  string `json:"command"`
			Cwd      string `json:"cwd"`
			ExitCode *int64 `json:"exit_code"`
			Host     string `json:"host"`
		} `json:"shell"`
	}
	_ = json.Unmarshal(e.Metadata, &m) // what it cannot read is left out; unmapped has it all
	sh := m.Shell
	o.Process = &ocsfProcess{UID: e.ID, Name: path.Base(sh.Command), CmdLine: e.ResourceID, WorkingDirectory: sh.Cwd}
	if sh.Command == "" {
		o.Process.Name = ""
	}
	if o.Process.UID == "" { // an event not yet stored: its span, else its time
		o.Process.UID = cmp.Or(e.SpanID, strconv.FormatInt(e.Time.UnixNano(), 10))
	}
	if sh.ExitCode != nil && ocsfInt(*sh.ExitCode) {
		o.ExitCode = sh.ExitCode
	}
	// OCSF 1.8.0 declares no Unknown device type: a shell runs on a host.
	o.Device = &ocsfDevice{TypeID: 1, Type: "Server", Hostname: sh.Host}
	if sh.Host == "" {
		o.Device.Name = deviceName(e)
	}
}

// deviceName names a device the event says nothing else of: the producer
// that observed it, else its source.
func deviceName(e *agenttrail.Event) string {
	if e.ProducerID != "" {
		return e.ProducerID
	}
	return e.Source
}

// ocsfSandboxFile fills in the file and container of a sandbox file
// operation and reports whether e is one: a file_* action (the watcher's,
// or an Engine API archive call, container.file_*) with a path.
func ocsfSandboxFile(e *agenttrail.Event, o *OCSFEvent) bool {
	op := strings.TrimPrefix(e.Action, "container.")
	if !strings.HasPrefix(op, "file_") {
		return false
	}
	var m struct {
		Sandbox struct {
			ContainerID string `json:"container_id"`
			Name        string `json:"name"`
			Path        string `json:"path"`
			NewPath     string `json:"new_path"`
			Size        *int64 `json:"size"`
			Dir         bool   `json:"dir"`
		} `json:"sandbox"`
	}
	_ = json.Unmarshal(e.Metadata, &m)
	sb := m.Sandbox
	p := sb.Path
	if p == "" && e.ResourceType == "file" {
		p = e.ResourceID
	}
	if p == "" {
		return false
	}
	o.File = ocsfFileOf(p, sb.Dir)
	if op == "file_rename" && sb.NewPath != "" {
		o.FileResult = ocsfFileOf(sb.NewPath, sb.Dir)
		o.FileResult.Size = sb.Size
	} else {
		o.File.Size = sb.Size
	}
	o.Device = &ocsfDevice{TypeID: 6, Type: "Virtual", UID: sb.ContainerID, Name: sb.Name}
	if sb.ContainerID == "" && sb.Name == "" {
		o.Device.Name = deviceName(e)
	}
	return true
}

func ocsfFileOf(p string, dir bool) *ocsfFile {
	f := &ocsfFile{Name: path.Base(p), Path: p, TypeID: 1, Type: "Regular File"}
	if dir {
		f.TypeID, f.Type = 2, "Folder"
	}
	return f
}

// fileActivityOf maps a sandbox file operation to File System Activity.
func fileActivityOf(action string) (int, string) {
	switch strings.TrimPrefix(action, "container.") {
	case "file_create":
		return 1, "Create"
	case "file_read":
		return 2, "Read"
	case "file_write":
		return 3, "Update"
	case "file_delete":
		return 4, "Delete"
	case "file_rename":
		return 5, "Rename"
	case "file_chmod":
		return 6, "Set Attributes"
	}
	return 99, "Other"
}

// httpActivityOf maps the forward proxy's method to HTTP Activity.
func httpActivityOf(action string) (int, string) {
	method, _, _ := strings.Cut(action, " ")
	for i, m := range [...]string{1: "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "TRACE", "PATCH"} {
		if i > 0 && method == m {
			return i, [...]string{"", "Connect", "Delete", "Get", "Head", "Options", "Post", "Put", "Trace", "Patch"}[i]
		}
	}
	return 99, "Other"
}

// ocsfHTTP fills in the request, response, upstream and traffic of a
// forward-proxy event from its action and metadata.http.
func ocsfHTTP(e *agenttrail.Event, o *OCSFEvent) {
	var m struct {
		HTTP struct {
			Domain   string `json:"domain"`
			Port     int    `json:"port"`
			Method   string `json:"method"`
			Path     string `json:"path"`
			BytesIn  int64  `json:"bytes_in"`
			BytesOut int64  `json:"bytes_out"`
		} `json:"http"`
	}
	_ = json.Unmarshal(e.Metadata, &m)
	h := m.HTTP
	if h.Port < 0 || h.Port > 65535 {
		h.Port = 0
	}
	method, target, _ := strings.Cut(e.Action, " ")
	if h.Method != "" {
		method = h.Method
	}
	req := &ocsfHTTPRequest{}
	if act, _ := httpActivityOf(method); act != 99 {
		req.HTTPMethod = method // one OCSF declares; another is in action and metadata
	}
	if uu, err := url.Parse(target); err == nil && uu.Host != "" {
		port, _ := strconv.Atoi(uu.Port())
		if port < 0 || port > 65535 {
			port = 0
		}
		req.URL = &ocsfURL{URLString: target, Scheme: uu.Scheme, Hostname: uu.Hostname(), Port: port, Path: uu.Path}
	} else if h.Path != "" {
		req.URL = &ocsfURL{Hostname: h.Domain, Port: h.Port, Path: h.Path}
	}
	o.HTTPRequest = req
	if e.StatusCode > 0 && ocsfInt(int64(e.StatusCode)) {
		o.HTTPResponse = &ocsfHTTPResponse{Code: e.StatusCode}
	}
	if h.Domain != "" {
		o.DstEndpoint = &ocsfEndpoint{Hostname: h.Domain, Port: h.Port}
	} else {
		o.SrcEndpoint = &ocsfEndpoint{Name: e.ActorID}
	}
	if h.BytesIn != 0 || h.BytesOut != 0 {
		o.Traffic = &ocsfTraffic{BytesIn: h.BytesIn, BytesOut: h.BytesOut}
	}
}

// ocsfAI adds the ai_operation profile of an LLM call: the model and, when
// they fit OCSF's integers, the token counts.
func ocsfAI(e *agenttrail.Event, l agenttrail.LLM, o *OCSFEvent) {
	provider := l.Provider
	if provider == "" {
		provider = "Unknown"
	}
	o.AIModel = &ocsfAIModel{Name: l.Model, AIProvider: provider}
	mc := &ocsfMessageContext{Service: ocsfService{Name: e.Source}}
	if l.Provider != "" {
		mc.Service.Name = l.Provider
	}
	in := l.InputTokens + l.CacheReadTokens + l.CacheWriteTokens
	out := l.OutputTokens
	set := func(v int64) *int64 {
		if v <= 0 || !ocsfInt(v) {
			return nil
		}
		return &v
	}
	mc.PromptTokens, mc.CompletionTokens = set(in), set(out)
	if mc.PromptTokens != nil || mc.CompletionTokens != nil {
		mc.TotalTokens = set(in + out)
	}
	o.MessageContext = mc
	o.Metadata.Profiles = append(o.Metadata.Profiles, "ai_operation")
}

var ocsfActivityNames = [...]string{0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete"}

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
