package sandbox

import (
	"fmt"
	"testing"
)

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         route
	}{
		{"POST", "/v1.47/containers/create", route{op: OpCreate}},
		{"POST", "/containers/create", route{op: OpCreate}},
		{"POST", "/v1.47/containers/abc/start", route{op: OpStart, container: "abc"}},
		{"POST", "/v1.24/containers/web/kill", route{op: OpKill, container: "web"}},
		{"POST", "/containers/web/exec", route{op: OpExecCreate, container: "web"}},
		{"POST", "/v1.50/exec/e1/start", route{op: OpExec, exec: "e1"}},
		{"DELETE", "/v1.47/containers/web", route{op: OpRemove, container: "web"}},
		{"PUT", "/v1.47/containers/web/archive", route{op: OpFileWrite, container: "web"}},
		{"GET", "/v1.47/containers/web/archive", route{op: OpFileRead, container: "web"}},
		{"HEAD", "/v1.47/containers/web/archive", route{}},
		{"GET", "/v1.47/containers/web/json", route{}},
		{"POST", "/v1.47/containers/web/attach", route{}},
		{"POST", "/v1.47/containers/web/wait", route{}},
		{"GET", "/v1.47/exec/e1/json", route{}},
		{"HEAD", "/_ping", route{}},
		{"GET", "/v1.47/containers/create", route{}},
		{"POST", "/vx.47/containers/create", route{}},
		{"POST", "/v1/containers/create", route{}},
	} {
		if got := parseRoute(tc.method, tc.path); got != tc.want {
			t.Errorf("parseRoute(%s %s) = %+v, want %+v", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Endpoint
		err  bool
	}{
		{"unix:///var/run/docker.sock", Endpoint{"unix", "/var/run/docker.sock"}, false},
		{"/run/user/1000/docker.sock", Endpoint{"unix", "/run/user/1000/docker.sock"}, false},
		{"tcp://127.0.0.1:2376", Endpoint{"tcp", "127.0.0.1:2376"}, false},
		{"tcp://localhost", Endpoint{"tcp", "localhost:2375"}, false},
		{"http://[::1]:9000/", Endpoint{"tcp", "[::1]:9000"}, false},
		{"unix://", Endpoint{}, true},
		{"https://example.com:2376", Endpoint{}, true},
		{"ssh://me@host", Endpoint{}, true},
		{"docker.sock", Endpoint{}, true},
		{"tcp://host:1/path", Endpoint{}, true},
	} {
		got, err := ParseEndpoint(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestMemo(t *testing.T) {
	m := newMemo(3)
	m.addContainer(container{id: "aaa111", image: "alpine", name: "one"})
	m.addContainer(container{id: "aaa222", image: "busybox", name: "two"})
	m.addContainer(container{id: "bbb333", image: "ubuntu", name: "three"})
	for _, tc := range []struct {
		ref, want string
	}{
		{"aaa111", "alpine"}, {"one", "alpine"}, {"/two", "busybox"}, {"bbb", "ubuntu"},
		{"aaa", ""}, // ambiguous prefix
		{"ccc", ""}, {"", ""},
	} {
		c, _ := m.lookup(tc.ref)
		if c.image != tc.want {
			t.Errorf("lookup(%q) image = %q, want %q", tc.ref, c.image, tc.want)
		}
	}

	m.renameContainer("one", "uno")
	if _, ok := m.lookup("one"); ok {
		t.Error("the old name still resolves after a rename")
	}
	if c, _ := m.lookup("uno"); c.id != "aaa111" {
		t.Errorf("lookup(uno) = %q, want aaa111", c.id)
	}
	m.removeContainer("two")
	if _, ok := m.lookup("aaa222"); ok {
		t.Error("a removed container still resolves")
	}
	if c, _ := m.lookup("aaa"); c.id != "aaa111" {
		t.Errorf("lookup(aaa) after the other aaa was removed = %q, want aaa111", c.id)
	}

	// The oldest is forgotten first when the memo is full.
	for i := range 3 {
		m.addContainer(container{id: fmt.Sprintf("ddd%d", i), name: fmt.Sprintf("d%d", i)})
	}
	for ref, want := range map[string]bool{"uno": false, "three": false, "d0": true, "d1": true, "d2": true} {
		if _, ok := m.lookup(ref); ok != want {
			t.Errorf("lookup(%q) after eviction found %v, want %v", ref, ok, want)
		}
	}
	if len(m.byID) != 3 || len(m.byName) != 3 {
		t.Errorf("memo holds %d ids and %d names, want 3 of each", len(m.byID), len(m.byName))
	}

	for i := range 5 {
		m.addExec(fmt.Sprint("e", i), execInstance{container: "d0", command: fmt.Sprint("cmd", i)})
	}
	if _, ok := m.exec("e1"); ok {
		t.Error("exec e1 was not forgotten when the memo filled")
	}
	if x, ok := m.exec("e4"); !ok || x.command != "cmd4" {
		t.Errorf("exec(e4) = %+v, %v", x, ok)
	}
	m.takeExec("e4")
	if _, ok := m.exec("e4"); ok || m.execQ.Len() != 2 {
		t.Errorf("after takeExec: found %v, %d queued, want gone and 2", ok, m.execQ.Len())
	}
}
