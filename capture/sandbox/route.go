package sandbox

import (
	"net/http"
	"strings"
)

// The operations of the Docker Engine API the proxy records, as
// metadata.sandbox.op; the event's action is "container." + op.
const (
	OpCreate     = "create"
	OpStart      = "start"
	OpStop       = "stop"
	OpKill       = "kill"
	OpRestart    = "restart"
	OpPause      = "pause"
	OpUnpause    = "unpause"
	OpRemove     = "remove"
	OpRename     = "rename"
	OpExecCreate = "exec_create"
	OpExec       = "exec"
	// OpFileWrite and OpFileRead are `docker cp` into and out of a
	// container (PUT and GET /containers/{id}/archive).
	OpFileWrite = "file_write"
	OpFileRead  = "file_read"
)

// route is what a Docker Engine API request is, as far as the proxy cares.
type route struct {
	op string // "" for requests that are relayed but not recorded
	// container is the container named in the path (an id or a name, as
	// given); exec is the exec instance of an exec start.
	container string
	exec      string
}

// containerOp returns the recorded operation of POST /containers/{id}/{verb}.
func containerOp(verb string) (string, bool) {
	switch verb {
	case "start", "stop", "kill", "restart", "pause", "unpause", "rename":
		return verb, true
	case "exec":
		return OpExecCreate, true
	}
	return "", false
}

// parseRoute recognises the recorded operations in method and path. The
// path may carry an API version prefix (/v1.47/containers/create).
func parseRoute(method, path string) route {
	p := stripVersion(path)
	seg := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(seg) == 2 && seg[0] == "containers" && seg[1] == "create" && method == http.MethodPost:
		return route{op: OpCreate}
	case len(seg) == 2 && seg[0] == "containers" && method == http.MethodDelete:
		return route{op: OpRemove, container: seg[1]}
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "archive":
		switch method {
		case http.MethodPut:
			return route{op: OpFileWrite, container: seg[1]}
		case http.MethodGet:
			return route{op: OpFileRead, container: seg[1]}
		}
	case len(seg) == 3 && seg[0] == "containers" && method == http.MethodPost:
		if op, ok := containerOp(seg[2]); ok {
			return route{op: op, container: seg[1]}
		}
	case len(seg) == 3 && seg[0] == "exec" && seg[2] == "start" && method == http.MethodPost:
		return route{op: OpExec, exec: seg[1]}
	}
	return route{}
}

// stripVersion removes a leading /v<major>.<minor> from path.
func stripVersion(path string) string {
	if len(path) < 3 || path[0] != '/' || path[1] != 'v' {
		return path
	}
	end := strings.IndexByte(path[1:], '/')
	if end < 0 {
		return path
	}
	v := path[2 : end+1]
	major, minor, ok := strings.Cut(v, ".")
	if !ok || !digits(major) || !digits(minor) {
		return path
	}
	return path[end+1:]
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
