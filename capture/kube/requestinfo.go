package kube

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// RequestInfo is what a Kubernetes API request addresses, derived from its
// method, path and query the way the API server's RequestInfoFactory derives
// it for authorization and audit, so the verbs recorded here are the verbs
// RBAC rules and the cluster's own audit log use.
type RequestInfo struct {
	// IsResource is false for non-resource paths (/version, /healthz,
	// /api, /apis/apps/v1 discovery …); their Verb is the lowercase method.
	IsResource  bool
	Verb        string
	APIPrefix   string // "api" or "apis"
	APIGroup    string // "" for the core group
	APIVersion  string
	Namespace   string
	Resource    string
	Subresource string
	Name        string
}

// methodVerbs maps an HTTP method to the verb of a request for a single
// object; a get or delete without a name becomes list/watch or
// deletecollection below.
var methodVerbs = map[string]string{
	http.MethodPost:   "create",
	http.MethodGet:    "get",
	http.MethodHead:   "get",
	http.MethodPut:    "update",
	http.MethodPatch:  "patch",
	http.MethodDelete: "delete",
}

// ParseRequestInfo derives the RequestInfo of a request.
func ParseRequestInfo(method string, u *url.URL) RequestInfo {
	ri := RequestInfo{Verb: strings.ToLower(method)}
	parts := splitPath(u.Path)
	if len(parts) < 3 || (parts[0] != "api" && parts[0] != "apis") {
		return ri
	}
	ri.APIPrefix, parts = parts[0], parts[1:]
	if ri.APIPrefix == "apis" {
		if len(parts) < 3 {
			return RequestInfo{Verb: ri.Verb}
		}
		ri.APIGroup, parts = parts[0], parts[1:]
	}
	ri.IsResource = true
	ri.APIVersion, parts = parts[0], parts[1:]
	ri.Verb = methodVerbs[method]
	if ri.Verb == "" {
		ri.Verb = strings.ToLower(method)
	}

	// The deprecated /watch/ and /proxy/ path segments name the verb.
	if parts[0] == "watch" || parts[0] == "proxy" {
		if len(parts) < 2 {
			return RequestInfo{Verb: strings.ToLower(method)}
		}
		ri.Verb, parts = parts[0], parts[1:]
	}

	if parts[0] == "namespaces" {
		if len(parts) > 1 {
			ri.Namespace = parts[1]
			// namespaces/NAME/status and /finalize are subresources of the
			// namespace itself; anything else is a resource inside it.
			if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
				parts = parts[2:]
			}
		}
	}
	switch {
	case len(parts) >= 3 && ri.Verb != "proxy":
		ri.Subresource = parts[2]
		fallthrough
	case len(parts) >= 2:
		ri.Name = parts[1]
		fallthrough
	case len(parts) >= 1:
		ri.Resource = parts[0]
	}

	if ri.Name == "" && ri.Verb == "get" {
		q := u.Query()
		if watch, _ := strconv.ParseBool(q.Get("watch")); watch {
			ri.Verb = "watch"
		} else {
			ri.Verb = "list"
		}
		// A watch or list of one object is how clients follow it by name.
		if name, ok := fieldSelectorName(q.Get("fieldSelector")); ok {
			ri.Name = name
		}
	}
	if ri.Name == "" && ri.Verb == "delete" {
		ri.Verb = "deletecollection"
	}
	return ri
}

// LongRunning reports whether the request stays open for as long as the
// client wants: watches, proxying, exec/attach/port-forward, and followed
// logs.
func (ri RequestInfo) LongRunning(q url.Values) bool {
	switch {
	case ri.Verb == "watch" || ri.Verb == "proxy":
		return true
	case ri.Subresource == "exec", ri.Subresource == "attach", ri.Subresource == "portforward", ri.Subresource == "proxy":
		return true
	case ri.Subresource == "log":
		follow, _ := strconv.ParseBool(q.Get("follow"))
		return follow
	}
	return false
}

// fieldSelectorName returns NAME from a field selector that requires
// metadata.name=NAME exactly.
func fieldSelectorName(sel string) (string, bool) {
	for term := range strings.SplitSeq(sel, ",") {
		k, v, ok := strings.Cut(term, "==")
		if !ok {
			k, v, ok = strings.Cut(term, "=")
		}
		if ok && !strings.HasSuffix(k, "!") && strings.TrimSpace(k) == "metadata.name" {
			v = strings.TrimSpace(v)
			if v != "" && v != "." && v != ".." && !strings.ContainsAny(v, "/%") {
				return v, true
			}
		}
	}
	return "", false
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
