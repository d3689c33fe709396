package kube

import (
	"net/url"
	"testing"
)

func TestParseRequestInfo(t *testing.T) {
	tests := []struct {
		method, target string
		want           RequestInfo
		longRunning    bool
	}{
		{"GET", "/api/v1/namespaces/default/pods", RequestInfo{IsResource: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods"}, false},
		{"GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=10", RequestInfo{IsResource: true, Verb: "watch", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods"}, true},
		{"GET", "/api/v1/namespaces/default/pods?watch=1&fieldSelector=metadata.name%3Dweb", RequestInfo{IsResource: true, Verb: "watch", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Name: "web"}, true},
		{"GET", "/api/v1/namespaces/default/pods?watch=false", RequestInfo{IsResource: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods"}, false},
		{"GET", "/api/v1/watch/namespaces/default/pods", RequestInfo{IsResource: true, Verb: "watch", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods"}, true},
		{"GET", "/api/v1/namespaces/default/pods/web", RequestInfo{IsResource: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Name: "web"}, false},
		{"HEAD", "/api/v1/namespaces/default/pods/web", RequestInfo{IsResource: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Name: "web"}, false},
		{"POST", "/api/v1/namespaces/default/pods", RequestInfo{IsResource: true, Verb: "create", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods"}, false},
		{"PUT", "/api/v1/namespaces/default/pods/web/status", RequestInfo{IsResource: true, Verb: "update", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Subresource: "status", Name: "web"}, false},
		{"PATCH", "/apis/apps/v1/namespaces/prod/deployments/api/scale", RequestInfo{IsResource: true, Verb: "patch", APIPrefix: "apis", APIGroup: "apps", APIVersion: "v1", Namespace: "prod", Resource: "deployments", Subresource: "scale", Name: "api"}, false},
		{"DELETE", "/api/v1/namespaces/default/pods/web", RequestInfo{IsResource: true, Verb: "delete", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Name: "web"}, false},
		{"DELETE", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb", RequestInfo{IsResource: true, Verb: "deletecollection", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods"}, false},
		{"POST", "/api/v1/namespaces/default/pods/web/exec?command=sh", RequestInfo{IsResource: true, Verb: "create", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Subresource: "exec", Name: "web"}, true},
		{"GET", "/api/v1/namespaces/default/pods/web/log?follow=true", RequestInfo{IsResource: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Subresource: "log", Name: "web"}, true},
		{"GET", "/api/v1/namespaces/default/pods/web/log", RequestInfo{IsResource: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Subresource: "log", Name: "web"}, false},
		{"GET", "/api/v1/proxy/namespaces/default/pods/web/healthz/deep", RequestInfo{IsResource: true, Verb: "proxy", APIPrefix: "api", APIVersion: "v1", Namespace: "default", Resource: "pods", Name: "web"}, true},
		{"GET", "/api/v1/namespaces", RequestInfo{IsResource: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Resource: "namespaces"}, false},
		{"GET", "/api/v1/namespaces/kube-system", RequestInfo{IsResource: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "kube-system", Resource: "namespaces", Name: "kube-system"}, false},
		{"PUT", "/api/v1/namespaces/old/finalize", RequestInfo{IsResource: true, Verb: "update", APIPrefix: "api", APIVersion: "v1", Namespace: "old", Resource: "namespaces", Subresource: "finalize", Name: "old"}, false},
		{"GET", "/api/v1/nodes/n1", RequestInfo{IsResource: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Resource: "nodes", Name: "n1"}, false},
		{"GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", RequestInfo{IsResource: true, Verb: "list", APIPrefix: "apis", APIGroup: "rbac.authorization.k8s.io", APIVersion: "v1", Resource: "clusterroles"}, false},
		{"GET", "/apis/apps/v1", RequestInfo{Verb: "get"}, false},
		{"GET", "/api/v1", RequestInfo{Verb: "get"}, false},
		{"GET", "/version", RequestInfo{Verb: "get"}, false},
		{"POST", "/healthz/x/y", RequestInfo{Verb: "post"}, false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		got := ParseRequestInfo(tt.method, u)
		if got != tt.want {
			t.Errorf("ParseRequestInfo(%s %s) = %+v, want %+v", tt.method, tt.target, got, tt.want)
		}
		if lr := got.LongRunning(u.Query()); lr != tt.longRunning {
			t.Errorf("ParseRequestInfo(%s %s).LongRunning = %v, want %v", tt.method, tt.target, lr, tt.longRunning)
		}
	}
}
