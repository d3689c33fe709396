package kube

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/agenttrail/agenttrail"
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
}

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
func (p *Proxy) record(r *http.Request, x *exchange, imp *Impersonation) {
	ri := x.info
	e := agenttrail.Event{
		Time:         x.start,
		DurationMS:   float64(p.now().Sub(x.start).Microseconds()) / 1000,
		Source:       agenttrail.SourceKube,
		Action:       r.Method + " " + r.URL.Path,
		ResourceType: ri.Resource,
		ResourceID:   resourceID(ri),
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
	if e.Description == "" {
		e.Description = describe(ri, p.cluster)
	}
	m := K8s{
		Cluster: p.cluster, Verb: ri.Verb, APIPath: r.URL.Path,
		APIGroup: ri.APIGroup, APIVersion: ri.APIVersion, Namespace: ri.Namespace,
		Resource: ri.Resource, Subresource: ri.Subresource, Name: ri.Name,
		User: e.ActorID, Impersonate: imp, LongRunning: ri.LongRunning(r.URL.Query()),
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

// resourceID is namespace/name, the namespace alone for a collection, or
// the name of a cluster-scoped object.
func resourceID(ri RequestInfo) string {
	switch {
	case ri.Namespace != "" && ri.Name != "" && ri.Resource != "namespaces":
		return ri.Namespace + "/" + ri.Name
	case ri.Name != "":
		return ri.Name
	}
	return ri.Namespace
}

func describe(ri RequestInfo, cluster string) string {
	if !ri.IsResource {
		return ""
	}
	what := ri.Resource
	if ri.Subresource != "" {
		what += "/" + ri.Subresource
	}
	if ri.Name != "" {
		what += " " + ri.Name
	}
	if ri.Namespace != "" && ri.Resource != "namespaces" {
		return fmt.Sprintf("%s %s in namespace %s of cluster %s", ri.Verb, what, ri.Namespace, cluster)
	}
	return fmt.Sprintf("%s %s in cluster %s", ri.Verb, what, cluster)
}
