package main

import (
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// TestTrafficShapes checks the demo teaches the shapes the capture
// surfaces record: an AWS operation's resource is of its own service, a
// Kubernetes action is the verb, refusals are denied, and every event
// validates.
func TestTrafficShapes(t *testing.T) {
	g := newTraffic(7)
	now := time.Now()
	seen := map[string]int{}
	for i := 0; i < 5000; i++ {
		e := g.event(now.Add(-time.Duration(i) * time.Second))
		e.Normalize(now, "")
		if err := e.Validate(now); err != nil {
			t.Fatalf("event %d does not validate: %v (%+v)", i, err, e)
		}
		seen[e.Source]++
		switch e.Source {
		case agenttrail.SourceAWS:
			service, _, _ := strings.Cut(e.Action, ":")
			if !strings.HasPrefix(e.ResourceType, service+":") || e.ResourceID == "" {
				t.Errorf("%s: resource %q %q, want a %s resource", e.Action, e.ResourceType, e.ResourceID, service)
			}
			if strings.Contains(e.ResourceID, ":s3:") && service != "s3" {
				t.Errorf("%s names an S3 resource %q", e.Action, e.ResourceID)
			}
		case agenttrail.SourceKube:
			if e.Action != "list" && e.Action != "delete" {
				t.Errorf("k8s-proxy action %q, want the verb", e.Action)
			}
		}
		if e.StatusCode == 403 && e.Result != agenttrail.ResultDenied {
			t.Errorf("%s %s: 403 recorded as %s, want denied", e.Source, e.Action, e.Result)
		}
	}
	if seen[agenttrail.SourceAWS] == 0 || seen[agenttrail.SourceKube] == 0 {
		t.Fatalf("sources seen %v: no AWS or Kubernetes events to check", seen)
	}
}
