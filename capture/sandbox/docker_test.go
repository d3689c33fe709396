package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// TestDockerCLI drives the real docker CLI through the proxy, on a unix
// socket in front of a TCP engine and the other way round: create, start,
// exec detached, exec attached with stdin (a hijacked stream that must be
// relayed both ways, stdin's end included), kill, restart, stop by short id
// and rm each give one event naming the full container id and its image.
func TestDockerCLI(t *testing.T) {
	for _, nets := range [][2]string{{"unix", "tcp"}, {"tcp", "unix"}} {
		t.Run("proxy-"+nets[0]+"-engine-"+nets[1], func(t *testing.T) {
			eng := startEngine(t, nets[1])
			host, _, mem := startDockerProxy(t, nets[0], DockerConfig{Upstream: eng.endpoint()})
			run := func(stdin string, args ...string) string {
				t.Helper()
				out, errOut, code := docker(t, host, stdin, args...)
				if code != 0 {
					t.Fatalf("docker %s: exit %d: %s", strings.Join(args, " "), code, errOut)
				}
				return out
			}
			id := strings.TrimSpace(run("", "create", "--name", "web", "alpine:3.20", "sh", "-c", "echo ready"))
			if len(id) != 64 {
				t.Fatalf("docker create printed %q, want a container id", id)
			}
			run("", "start", "web")
			run("", "exec", "-d", "web", "touch", "/tmp/x")
			if out := run("hello stdin\n", "exec", "-i", "web", "cat"); out != "ran: cat\nhello stdin\n" {
				t.Errorf("docker exec -i output = %q, want the command and the echoed stdin", out)
			}
			run("", "kill", "-s", "HUP", "web")
			run("", "restart", "web")
			run("", "stop", id[:12])
			run("", "rm", "web")

			type want struct {
				op      string
				status  int
				command string
				signal  string
				detach  bool
			}
			wants := []want{
				{OpCreate, 201, "sh -c 'echo ready'", "", false},
				{OpStart, 204, "", "", false},
				{OpExecCreate, 201, "touch /tmp/x", "", false},
				{OpExec, 200, "touch /tmp/x", "", true},
				{OpExecCreate, 201, "cat", "", false},
				{OpExec, 101, "cat", "", false},
				{OpKill, 204, "", "HUP", false},
				{OpRestart, 204, "", "", false},
				{OpStop, 204, "", "", false},
				{OpRemove, 204, "", "", false},
			}
			events := mem.Wait(t, len(wants))
			if len(events) != len(wants) {
				t.Fatalf("recorded %d events, want %d: %v", len(events), len(wants), actions(events))
			}
			execIDs := map[string]int{}
			for i, e := range events {
				w, m := wants[i], sandboxMeta(t, e)
				if e.Action != "container."+w.op || e.StatusCode != w.status || e.Result != agenttrail.ResultSuccess {
					t.Errorf("event %d = %s %d %s, want container.%s %d success", i, e.Action, e.StatusCode, e.Result, w.op, w.status)
				}
				if e.Source != agenttrail.SourceSandbox || e.ResourceType != "container" || e.ResourceID != id || m.ContainerID != id {
					t.Errorf("event %d: source %q, resource %s/%s, container %q; want sandbox, container/%s", i, e.Source, e.ResourceType, e.ResourceID, m.ContainerID, id)
				}
				if m.Op != w.op || m.Image != "alpine:3.20" || m.Name != "web" || m.Command != w.command || m.Signal != w.signal || m.Detach != w.detach {
					t.Errorf("event %d metadata = %+v, want op %s, image alpine:3.20, name web, command %q, signal %q, detach %v", i, m, w.op, w.command, w.signal, w.detach)
				}
				if !strings.HasPrefix(m.APIPath, "/v"+fakeAPIVersion+"/") {
					t.Errorf("event %d api_path = %q, want the negotiated version /v%s/ in front", i, m.APIPath, fakeAPIVersion)
				}
				if e.ActorID != "anonymous" || e.ActorType != agenttrail.ActorAgent {
					t.Errorf("event %d actor = %s %q, want agent anonymous", i, e.ActorType, e.ActorID)
				}
				if m.ExecID != "" {
					execIDs[m.ExecID]++
				}
			}
			if len(execIDs) != 2 || execIDs[sandboxMeta(t, events[3]).ExecID] != 2 || execIDs[sandboxMeta(t, events[5]).ExecID] != 2 {
				t.Errorf("exec ids %v: want each exec create linked to its start", execIDs)
			}
			if !slices.Contains(eng.seen(), "POST /v"+fakeAPIVersion+"/containers/create") {
				t.Errorf("engine saw %v, want the CLI to negotiate API %s", eng.seen(), fakeAPIVersion)
			}
		})
	}
}

// TestDockerFailures records what the Engine refused as failures with its
// reason, and an Engine that cannot be reached as an error.
func TestDockerFailures(t *testing.T) {
	eng := startEngine(t, "unix")
	host, _, mem := startDockerProxy(t, "unix", DockerConfig{Upstream: eng.endpoint()})
	if _, errOut, code := docker(t, host, "", "create", "--pull", "never", "missing"); code == 0 || !strings.Contains(errOut, "No such image: missing") {
		t.Errorf("docker create of a missing image: exit %d, %q", code, errOut)
	}
	if _, errOut, code := docker(t, host, "", "start", "nosuch"); code == 0 || !strings.Contains(errOut, "No such container: nosuch") {
		t.Errorf("docker start of a missing container: exit %d, %q", code, errOut)
	}
	down := Endpoint{Network: "unix", Address: filepath.Join(shortTempDir(t), "gone.sock")}
	downHost, _, downMem := startDockerProxy(t, "unix", DockerConfig{Upstream: down})
	if _, errOut, code := docker(t, downHost, "", "start", "web"); code == 0 {
		t.Errorf("docker start with the engine down: exit 0 (%s)", errOut)
	}

	events := mem.Wait(t, 2)
	for i, w := range []struct {
		action, resource, desc string
		status                 int
	}{
		{"container.create", "", "No such image: missing", 404},
		{"container.start", "nosuch", "No such container: nosuch", 404},
	} {
		e := events[i]
		if e.Action != w.action || e.ResourceID != w.resource || e.StatusCode != w.status || e.Result != agenttrail.ResultFailure || e.Description != w.desc {
			t.Errorf("event %d = %s %q %d %s %q, want %s %q %d failure %q", i, e.Action, e.ResourceID, e.StatusCode, e.Result, e.Description, w.action, w.resource, w.status, w.desc)
		}
	}
	if m := sandboxMeta(t, events[0]); m.Image != "missing" {
		t.Errorf("failed create image = %q, want missing", m.Image)
	}
	e := downMem.Wait(t, 1)[0]
	if e.Action != "container.start" || e.ResourceID != "web" || e.Result != agenttrail.ResultError || !strings.Contains(e.Description, "engine unreachable") {
		t.Errorf("engine down: %s %q %s %q, want container.start web error, engine unreachable", e.Action, e.ResourceID, e.Result, e.Description)
	}
}

// TestDockerActorAndRedaction names the actor with the header the docker
// CLI sends from config.json; the proxy removes it before the Engine, and
// secrets on exec command lines never reach the recorder.
func TestDockerActorAndRedaction(t *testing.T) {
	eng := startEngine(t, "unix")
	ids := &capture.Identities{Default: capture.Actor{ID: "default-agent"}}
	host, _, mem := startDockerProxy(t, "unix", DockerConfig{Upstream: eng.endpoint(), Identities: ids})

	// --config overrides the empty DOCKER_CONFIG docker() sets.
	run := func(actor string, args ...string) {
		t.Helper()
		cfg := t.TempDir()
		if actor != "" {
			b, _ := json.Marshal(map[string]any{"HttpHeaders": map[string]string{capture.HeaderActorID: actor}})
			if err := os.WriteFile(filepath.Join(cfg, "config.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if _, errOut, code := docker(t, host, "", append([]string{"--config", cfg}, args...)...); code != 0 {
			t.Fatalf("docker %v: exit %d: %s", args, code, errOut)
		}
	}
	const secret = "hunter2-Zq9"
	run("agent-7", "create", "--name", "db", "postgres")
	run("", "start", "db")
	run("agent-7", "exec", "-d", "db", "psql", "--password", secret, "-c", "select 1")

	events := mem.Wait(t, 4)
	for i, want := range []string{"agent-7", "default-agent", "agent-7", "agent-7"} {
		if events[i].ActorID != want {
			t.Errorf("event %d (%s) actor = %q, want %q", i, events[i].Action, events[i].ActorID, want)
		}
		b, _ := json.Marshal(events[i])
		if strings.Contains(string(b), secret) {
			t.Errorf("event %d holds the secret: %s", i, b)
		}
	}
	if m := sandboxMeta(t, events[3]); !strings.Contains(m.Command, "psql --password [REDACTED") {
		t.Errorf("exec command = %q, want the password redacted", m.Command)
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if eng.actorSeen != 0 {
		t.Errorf("%d requests reached the engine with %s", eng.actorSeen, capture.HeaderActorID)
	}
}

// TestDockerExecCreatedElsewhere links an exec start to its container and
// command by asking the Engine, when the proxy did not see the exec created.
func TestDockerExecCreatedElsewhere(t *testing.T) {
	eng := startEngine(t, "unix")
	host, _, mem := startDockerProxy(t, "unix", DockerConfig{Upstream: eng.endpoint()})
	if _, errOut, code := docker(t, host, "", "run", "-d", "--name", "box", "alpine"); code != 0 {
		t.Fatalf("docker run -d: %s", errOut)
	}
	direct := unixHTTPClient(t, eng.sock)
	resp, err := direct.Post("http://docker/v1.47/containers/box/exec", "application/json", strings.NewReader(`{"Cmd":["ls","-l","/root"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Id string }
	decodeJSON(t, resp, &created)
	proxied := unixHTTPClient(t, strings.TrimPrefix(host, "unix://"))
	resp, err = proxied.Post("http://docker/v1.47/exec/"+created.Id+"/start", "application/json", strings.NewReader(`{"Detach":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	events := mem.Wait(t, 3)
	e, m := events[2], sandboxMeta(t, events[2])
	if e.Action != "container.exec" || e.ResourceID != sandboxMeta(t, events[0]).ContainerID || m.Command != "ls -l /root" || m.Image != "alpine" || m.ExecID != created.Id {
		t.Errorf("exec start = %s on %q, metadata %+v; want container.exec on the box container running ls -l /root", e.Action, e.ResourceID, m)
	}
}

// TestDockerPeerCredential resolves the actor from the user of the process
// connecting to the unix socket, which a header cannot override; over TCP
// there is no such credential, so the caller is the default actor when
// unmapped callers are allowed, and is refused (denied) when not.
func TestDockerPeerCredential(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peer credentials are read on Linux only")
	}
	eng := startEngine(t, "tcp")
	strict := &capture.Identities{Default: capture.Actor{ID: "default-agent"}}
	strict.Add(fmt.Sprintf("uid:%d", os.Getuid()), capture.Actor{ID: "agent-by-uid"})
	host, _, mem := startDockerProxy(t, "tcp", DockerConfig{Upstream: eng.endpoint(), Identities: strict})
	if _, errOut, code := docker(t, host, "", "create", "alpine"); code == 0 || !strings.Contains(errOut, "not mapped") {
		t.Fatalf("docker create over tcp without a mapped peer: exit %d, %s; want refused", code, errOut)
	}
	// The CLI stops at its first refused call; a create sent as such is
	// refused and recorded.
	resp, err := http.Post("http://"+strings.TrimPrefix(host, "tcp://")+"/v1.47/containers/create", "application/json", strings.NewReader(`{"Image":"alpine"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST /containers/create without a mapped peer = %d, want 403", resp.StatusCode)
	}
	if e := mem.Wait(t, 1)[0]; e.Result != agenttrail.ResultDenied || e.StatusCode != 403 || e.ActorID != "default-agent" {
		t.Errorf("refused create: %s %d by %q; want denied 403 by default-agent", e.Result, e.StatusCode, e.ActorID)
	}

	ids := &capture.Identities{Default: capture.Actor{ID: "default-agent"}, AllowUnmapped: true}
	ids.Add(fmt.Sprintf("uid:%d", os.Getuid()), capture.Actor{ID: "agent-by-uid"})
	for _, tc := range []struct{ network, want string }{{"unix", "agent-by-uid"}, {"tcp", "default-agent"}} {
		host, _, mem := startDockerProxy(t, tc.network, DockerConfig{Upstream: eng.endpoint(), Identities: ids})
		if _, errOut, code := docker(t, host, "", "create", "alpine"); code != 0 {
			t.Fatalf("docker create over %s: %s", tc.network, errOut)
		}
		if e := mem.Wait(t, 1)[0]; e.ActorID != tc.want {
			t.Errorf("over %s: actor %q, want %q", tc.network, e.ActorID, tc.want)
		}
	}
}
