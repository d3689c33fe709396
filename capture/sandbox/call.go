package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// call is one recorded Engine API call, filled in as it goes and recorded
// when the Engine has answered.
type call struct {
	start      time.Time
	actor      capture.Actor
	span       capture.Span
	route      route
	apiPath    string
	image      string
	name       string
	command    string
	signal     string
	path       string
	privileged bool
	detach     bool
	created    string // the id the Engine returned for a create or exec create
	container  string // the container's full id when known, else as named
	status     int
	broken     bool // the Engine did not answer
	denied     bool // the proxy refused the caller
	errMsg     string
	recorded   bool
}

// maxInspected bounds the request and response bodies the proxy reads to
// learn an image, a command or an id. Larger ones are relayed unread.
const maxInspected = 1 << 20

// strSlice is a command in the Engine API: a JSON string or array.
type strSlice []string

func (s *strSlice) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = strSlice{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// readRequest learns what a recorded call is about from its query and,
// for the calls whose bodies are small JSON, its body.
func (p *DockerProxy) readRequest(r *http.Request, c *call) {
	q := r.URL.Query()
	switch c.route.op {
	case OpCreate:
		c.name = strings.TrimPrefix(q.Get("name"), "/")
		var body struct {
			Image      string
			Cmd        strSlice
			Entrypoint strSlice
			HostConfig struct{ Privileged bool }
		}
		if peekJSON(r, &body) {
			c.image, c.privileged = body.Image, body.HostConfig.Privileged
			c.command = joinCommand(append(body.Entrypoint, body.Cmd...))
		}
	case OpExecCreate:
		var body struct {
			Cmd        strSlice
			Privileged bool
		}
		if peekJSON(r, &body) {
			c.command, c.privileged = joinCommand(body.Cmd), body.Privileged
		}
	case OpExec:
		var body struct{ Detach bool }
		if peekJSON(r, &body) {
			c.detach = body.Detach
		}
	case OpKill:
		c.signal = q.Get("signal")
		if c.signal == "" {
			c.signal = "SIGKILL" // the Engine's default
		}
	case OpRename:
		c.name = strings.TrimPrefix(q.Get("name"), "/")
	case OpFileWrite, OpFileRead:
		c.path = q.Get("path")
	}
}

// peekJSON decodes r's body into v, leaving the body whole for the Engine.
// It reports whether the body was read and decoded.
func peekJSON(r *http.Request, v any) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxInspected+1))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil || len(buf) > maxInspected {
		return false
	}
	return json.Unmarshal(buf, v) == nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// readResponse learns the id a create returned, or the Engine's reason for
// a failure, leaving the body whole for the client.
func (c *call) readResponse(resp *http.Response) {
	created := resp.StatusCode == http.StatusCreated && (c.route.op == OpCreate || c.route.op == OpExecCreate)
	if !created && resp.StatusCode < 400 {
		return
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, maxInspected+1))
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
	if err != nil || len(buf) > maxInspected {
		return
	}
	var v struct {
		ID      string `json:"Id"`
		Message string `json:"message"`
	}
	if json.Unmarshal(buf, &v) != nil {
		return
	}
	if created {
		c.created = v.ID
	} else {
		c.errMsg = v.Message
	}
}

// fail notes that the Engine did not answer.
func (c *call) fail(ctx context.Context, err error) {
	c.broken = true
	switch {
	case ctx.Err() != nil:
		c.errMsg = "the client went away before the engine answered"
	case errors.Is(err, context.DeadlineExceeded):
		c.errMsg = "engine timed out: " + err.Error()
	default:
		c.errMsg = "engine unreachable: " + err.Error()
	}
}

// finish resolves the container a call is about from what was remembered,
// remembers what the call created, and records it.
func (p *DockerProxy) finish(ctx context.Context, c *call) {
	if c.recorded {
		return
	}
	c.recorded = true
	ok := !c.broken && c.status > 0 && c.status < 400
	ref := c.route.container
	switch c.route.op {
	case OpCreate:
		ref = ""
		c.container = c.created
		if ok && c.created != "" {
			p.memo.addContainer(container{id: c.created, image: c.image, name: c.name})
		}
	case OpExec:
		x, found := p.memo.exec(c.route.exec)
		if !found && ok {
			x, found = p.inspectExec(ctx, c.route.exec)
		}
		if found {
			ref, c.command = x.container, x.command
		}
		if ok {
			p.memo.takeExec(c.route.exec)
		}
	}
	if ref != "" {
		c.container = ref
		if known, found := p.memo.lookup(ref); found {
			c.container, c.image = known.id, known.image
			if c.name == "" {
				c.name = known.name
			}
		}
	}
	switch c.route.op {
	case OpExecCreate:
		if ok && c.created != "" {
			p.memo.addExec(c.created, execInstance{container: ref, command: c.command})
		}
	case OpRemove:
		if ok {
			p.memo.removeContainer(ref)
		}
	case OpRename:
		if ok {
			p.memo.renameContainer(ref, c.name)
		}
	}
	p.record(ctx, c)
}

// record turns c into one event.
func (p *DockerProxy) record(ctx context.Context, c *call) {
	e := agenttrail.Event{
		Time:         c.start,
		DurationMS:   float64(p.now().Sub(c.start).Microseconds()) / 1000,
		Action:       "container." + c.route.op,
		ResourceType: "container",
		ResourceID:   c.container,
		StatusCode:   c.status,
		Description:  c.errMsg,
	}
	switch {
	case c.broken:
		e.Result = agenttrail.ResultError
	case c.denied:
		e.Result = agenttrail.ResultDenied
	default:
		e.Result = capture.ResultOf(c.status)
	}
	if e.Description == "" {
		e.Description = describeCall(c)
	}
	c.span.Apply(&e)
	execID := c.route.exec
	if c.route.op == OpExecCreate {
		execID = c.created
	}
	m := Sandbox{
		ContainerID: c.container, Op: c.route.op, Image: c.image, Name: c.name,
		Command: c.command, Signal: c.signal, Path: c.path, APIPath: c.apiPath,
		ExecID: execID, Detach: c.detach, Privileged: c.privileged,
	}
	if err := record(ctx, p.rec, c.actor, e, m); err != nil {
		p.log.Error("docker proxy: encode metadata", "err", err)
	}
}

// describeCall is one short sentence about a container call.
func describeCall(c *call) string {
	d := "container." + c.route.op
	if c.container != "" {
		d += " " + capture.Shorten(c.container, 64)
	}
	if c.image != "" {
		d += " (image " + c.image + ")"
	}
	if c.command != "" {
		d += ": " + capture.Shorten(c.command, 256)
	}
	if c.status >= 400 {
		d += fmt.Sprintf(": %d %s", c.status, http.StatusText(c.status))
	}
	return d
}

// inspectTimeout bounds asking the Engine about an exec instance the proxy
// did not see created.
const inspectTimeout = 2 * time.Second

// inspectExec asks the Engine which container and command exec instance id
// belongs to: one the proxy did not see created (it was restarted, or the
// exec was created through another endpoint) would otherwise be recorded
// without them.
func (p *DockerProxy) inspectExec(ctx context.Context, id string) (execInstance, bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inspectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.upstreamHost()+"/exec/"+url.PathEscape(id)+"/json", nil)
	if err != nil {
		return execInstance{}, false
	}
	resp, err := p.tr.RoundTrip(req)
	if err != nil {
		p.log.Warn("docker proxy: inspect exec", "exec_id", id, "err", err)
		return execInstance{}, false
	}
	defer resp.Body.Close()
	var v struct {
		ContainerID   string
		ProcessConfig struct {
			Entrypoint string   `json:"entrypoint"`
			Arguments  []string `json:"arguments"`
		}
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, maxInspected)).Decode(&v) != nil || v.ContainerID == "" {
		return execInstance{}, false
	}
	argv := append([]string{v.ProcessConfig.Entrypoint}, v.ProcessConfig.Arguments...)
	return execInstance{container: v.ContainerID, command: joinCommand(argv)}, true
}
