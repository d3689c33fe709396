package clustertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSServerBinary builds the official nats-server (the module's own
// dependency, so the version the in-process servers run) into dir, once
// per test binary, and returns its path. A test binary that calls it
// removes dir in its TestMain.
func NATSServerBinary(t testing.TB, dir string) string {
	t.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			buildErr = err.Error() + ": " + string(out)
			return
		}
		builtBin = bin
	})
	if builtBin == "" {
		t.Fatalf("go build nats-server: %s", buildErr)
	}
	return builtBin
}

var (
	buildOnce          sync.Once
	builtBin, buildErr string
)

// NATSProcess is a nats-server run as a child process.
type NATSProcess struct {
	Name string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// URL is the server's client URL.
func (p *NATSProcess) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(p.port) }

// Kill kills the server with SIGKILL, as a machine's crash would: no
// shutdown, no leadership handed over, and waits until it is gone.
func (p *NATSProcess) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// NATSProcessCluster is a cluster of nats-server processes with
// JetStream, routed on loopback.
type NATSProcessCluster struct {
	Nodes []*NATSProcess
}

// StartNATSProcessCluster starts n nats-server processes of bin that form
// one cluster, each with its store in a temporary directory; they are
// killed when the test ends, and their logs shown if it failed. It returns
// once the cluster has a JetStream meta leader.
func StartNATSProcessCluster(t testing.TB, bin string, n int) *NATSProcessCluster {
	t.Helper()
	name := Unique("c")
	clusterPorts := make([]int, n)
	var routes []string
	for i := range n {
		clusterPorts[i] = freePort(t)
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(clusterPorts[i]))
	}
	c := &NATSProcessCluster{}
	for i := range n {
		p := &NATSProcess{Name: name + "-" + strconv.Itoa(i), port: freePort(t), done: make(chan struct{})}
		dir := t.TempDir()
		logf, err := os.Create(filepath.Join(dir, "log"))
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close() // the child has its own descriptor
		p.cmd = exec.Command(bin,
			"--name", p.Name, "-a", "127.0.0.1", "-p", strconv.Itoa(p.port),
			"-js", "-sd", filepath.Join(dir, "store"),
			"--cluster_name", name, "--cluster", routes[i], "--routes", strings.Join(routes, ","))
		p.cmd.Stdout, p.cmd.Stderr = logf, logf
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start nats-server: %v", err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		c.Nodes = append(c.Nodes, p)
		t.Cleanup(func() {
			p.Kill()
			if log, _ := os.ReadFile(logf.Name()); t.Failed() {
				t.Logf("nats-server %s:\n%s", p.Name, log)
			}
		})
	}
	WaitFor(t, "the NATS cluster's JetStream meta leader", 60*time.Second, func() bool {
		nc, err := nats.Connect(c.URL(), nats.Timeout(time.Second))
		if err != nil {
			return false
		}
		defer nc.Close()
		_, err = nc.Request("$JS.API.INFO", nil, time.Second)
		return err == nil
	})
	return c
}

// URL is every node's client URL, comma-separated, as --nats takes them.
func (c *NATSProcessCluster) URL() string {
	var urls []string
	for _, p := range c.Nodes {
		urls = append(urls, p.URL())
	}
	return strings.Join(urls, ",")
}
