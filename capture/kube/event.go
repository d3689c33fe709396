package kube

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// K8s is what a k8s-proxy event holds under metadata.k8s.
type K8s struct {
	Cluster     string `json:"cluster"`
	Verb        string `json:"verb"`
	APIPath     string `json:"api_path"`
	APIGroup    string `json:"api_group,omitempty"`
	APIVersion  string `json:"api_version,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Name        string `json:"name,omitempty"`
	// User is the actor the proxy resolved from the agent's credential;
	// Groups are the groups it asked to act as (Impersonate-Group), the
	// only groups the proxy knows of.
	User        string         `json:"user"`
	Groups      []string       `json:"groups,omitempty"`
	Impersonate *Impersonation `json:"impersonate,omitempty"`
	LongRunning bool           `json:"long_running,omitempty"`
	// Reason and Message are the API server's metav1.Status of a refused
	// or failed request ("Forbidden", "pods \"web\" is forbidden: …").
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ResourceDiscovery is the resource_type of discovery requests (/api,
// /apis, /version, /openapi/…): clients send several before each command,
// so a default view can hide them by this type.
const ResourceDiscovery = "discovery"

// Impersonation is what a request asked to act as, from its
// Impersonate-* headers.
type Impersonation struct {
	User   string              `json:"user,omitempty"`
	Groups []string            `json:"groups,omitempty"`
	UID    string              `json:"uid,omitempty"`
	Extra  map[string][]string `json:"extra,omitempty"`
}

func impersonation(h http.Header) *Impersonation {
	imp := Impersonation{User: h.Get("Impersonate-User"), Groups: h.Values("Impersonate-Group"), UID: h.Get("Impersonate-Uid")}
	for k, v := range h {
		if extra, ok := strings.CutPrefix(k, "Impersonate-Extra-"); ok {
			if imp.Extra == nil {
				imp.Extra = map[string][]string{}
			}
			imp.Extra[strings.ToLower(extra)] = v
		}
	}
	if imp.User == "" && len(imp.Groups) == 0 && imp.UID == "" && imp.Extra == nil {
		return nil
	}
	return &imp
}

// record turns x into one event and hands it to the recorder, redacted.
// The action is the verb, as in the Kubernetes audit log, so people filter
// by it; the path is metadata.k8s.api_path.
func (p *Proxy) record(r *http.Request, x *exchange, imp *Impersonation) {
	ri := x.info
	e := agenttrail.Event{
		Time:         x.start,
		DurationMS:   float64(p.now().Sub(x.start).Microseconds()) / 1000,
		Source:       agenttrail.SourceKube,
		Action:       ri.Verb,
		ResourceType: ri.Resource,
		ResourceID:   resourceID(ri),
		StatusCode:   x.status,
	}
	if !ri.IsResource {
		e.ResourceID = x.path
		if isDiscovery(x.path) {
			e.ResourceType = ResourceDiscovery
		}
	}
	x.actor.Apply(&e)
	x.span.Apply(&e)
	e.Result = capture.ProxiedResult(x.broken, x.denied != "", x.status)
	e.Description = describe(ri, x)
	m := K8s{
		Cluster: p.cluster, Verb: ri.Verb, APIPath: x.path,
		APIGroup: ri.APIGroup, APIVersion: ri.APIVersion, Namespace: ri.Namespace,
		Resource: ri.Resource, Subresource: ri.Subresource, Name: ri.Name,
		User: e.ActorID, Impersonate: imp, LongRunning: ri.LongRunning(r.URL.Query()),
		Reason: x.reason, Message: x.message,
	}
	if imp != nil {
		m.Groups = imp.Groups
	}
	if err := e.SetMetadata("k8s", m); err != nil {
		p.log.Error("kube proxy: encode metadata", "err", err)
	}
	// A watch usually ends with its client going away; the event still goes.
	p.rec.Record(context.WithoutCancel(r.Context()), e)
}

// resourceID is namespace/name for a namespaced object, the name of a
// cluster-scoped one (a namespace included), and empty for a collection:
// a list of pods in namespace default is resource_type pods with the
// namespace in metadata.k8s.namespace, never "default", which would read
// as a pod of that name.
func resourceID(ri RequestInfo) string {
	switch {
	case ri.Name == "":
		return ""
	case ri.Namespace != "" && ri.Resource != "namespaces":
		return ri.Namespace + "/" + ri.Name
	}
	return ri.Name
}

// isDiscovery reports whether p is one of the paths clients read to learn
// what the API server serves.
func isDiscovery(p string) bool {
	p = strings.TrimSuffix(p, "/")
	for _, prefix := range []string{"/api", "/apis", "/version", "/openapi"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

// describe is one short sentence: "delete pods web-1 in namespace default",
// then why it did not succeed when it did not.
func describe(ri RequestInfo, x *exchange) string {
	var b strings.Builder
	if ri.IsResource {
		b.WriteString(ri.Verb + " " + ri.Resource)
		if ri.Subresource != "" {
			b.WriteString("/" + ri.Subresource)
		}
		if ri.Name != "" {
			b.WriteString(" " + ri.Name)
		}
		if ri.Namespace != "" && ri.Resource != "namespaces" {
			b.WriteString(" in namespace " + ri.Namespace)
		}
	} else {
		b.WriteString(ri.Verb + " " + x.path)
	}
	switch {
	case x.errMsg != "":
		fmt.Fprintf(&b, ": %s", x.errMsg)
	case x.denied != "":
		fmt.Fprintf(&b, ": refused by the proxy: %s", x.denied)
	case x.message != "":
		fmt.Fprintf(&b, ": %d %s", x.status, x.message)
	case x.status >= 400:
		fmt.Fprintf(&b, ": %d %s", x.status, http.StatusText(x.status))
	}
	return b.String()
}
