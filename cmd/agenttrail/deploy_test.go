package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agenttrail/agenttrail/app"
)

// dockerfile is what the test reads of deploy/Dockerfile: each instruction
// of the final stage, and the build stage's RUN lines.
type dockerfile struct {
	stages int
	run    []string            // every RUN, all stages
	final  map[string][]string // instruction -> its arguments, final stage
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := dockerfile{final: map[string][]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(sc.Text())
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		switch instr {
		case "FROM":
			d.stages++
			d.final = map[string][]string{}
		case "RUN":
			d.run = append(d.run, rest)
		}
		d.final[instr] = append(d.final[instr], rest)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// execForm decodes an instruction's exec form, ["a", "b"], and refuses the
// shell form, which a shell-less image cannot run.
func execForm(t *testing.T, instr, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil || len(args) == 0 {
		t.Fatalf("%s %s: want the exec form [\"...\"]: %v", instr, s, err)
	}
	return args
}

// checkServe parses args with serve's own flag parsing (and the
// configuration file a --config names, through its own parser) and checks
// the configuration as serve would start it, without opening anything.
func checkServe(t *testing.T, where string, args []string) app.Config {
	t.Helper()
	var stderr strings.Builder
	env := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr, Getenv: func(string) string { return "" }}
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s runs %q, want serve", where, args)
	}
	cfg, err := serveFlags(args[1:], env)
	if err != nil {
		t.Fatalf("%s: serve refuses %q: %v %s", where, args[1:], err, stderr.String())
	}
	if err := app.Check(cfg); err != nil {
		t.Fatalf("%s: serve %q would not start: %v", where, args[1:], err)
	}
	return cfg
}

// TestDockerfile checks deploy/Dockerfile against what serve accepts: its
// command is a serve command line serve parses and would start, on the
// exposed port, with its data in the volume; the binary is static, the
// user is not root, and the health check is the health command on the
// same port.
func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t, filepath.Join("..", "..", "deploy", "Dockerfile"))
	if d.stages < 2 {
		t.Errorf("%d stages, want a build stage and a final one", d.stages)
	}
	if !slices.ContainsFunc(d.run, func(r string) bool {
		return strings.Contains(r, "CGO_ENABLED=0") && strings.Contains(r, "go build") && strings.Contains(r, "./cmd/agenttrail")
	}) {
		t.Errorf("no RUN builds ./cmd/agenttrail with CGO_ENABLED=0: %q", d.run)
	}
	user := d.final["USER"]
	if len(user) != 1 || strings.HasPrefix(user[0], "0") || strings.HasPrefix(user[0], "root") {
		t.Errorf("final stage USER %q, want one non-root user", user)
	}
	vols := d.final["VOLUME"]
	if len(vols) != 1 || !slices.Equal(execForm(t, "VOLUME", vols[0]), []string{"/data"}) {
		t.Errorf("VOLUME %q, want [\"/data\"]", vols)
	}
	exposed := d.final["EXPOSE"]
	if len(exposed) != 1 {
		t.Fatalf("EXPOSE %q, want one port", exposed)
	}
	entry, cmd := d.final["ENTRYPOINT"], d.final["CMD"]
	if len(entry) != 1 || len(cmd) != 1 {
		t.Fatalf("ENTRYPOINT %q and CMD %q: want one of each", entry, cmd)
	}
	bin := execForm(t, "ENTRYPOINT", entry[0])
	cfg := checkServe(t, "CMD", execForm(t, "CMD", cmd[0]))
	if _, port, _ := net.SplitHostPort(cfg.Addr); port != exposed[0] {
		t.Errorf("serve listens on %s, the image exposes %s", cfg.Addr, exposed[0])
	}
	if cfg.DataDir != "/data" {
		t.Errorf("serve keeps its data in %s, not in the /data volume", cfg.DataDir)
	}

	hc := d.final["HEALTHCHECK"]
	if len(hc) != 1 {
		t.Fatalf("HEALTHCHECK %q, want one", hc)
	}
	_, hcCmd, ok := strings.Cut(hc[0], "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc[0])
	}
	check := execForm(t, "HEALTHCHECK CMD", hcCmd)
	if check[0] != bin[0] || len(check) < 2 || check[1] != "health" {
		t.Fatalf("HEALTHCHECK runs %q, want %s health", check, bin[0])
	}
	// The health check's URL is the server's port; run it, with that URL's
	// path, against a real server.
	i := slices.Index(check, "--url")
	if i < 0 || i+1 >= len(check) {
		t.Fatalf("HEALTHCHECK %q names no --url", check)
	}
	u := check[i+1]
	if !strings.Contains(u, ":"+exposed[0]+"/") {
		t.Errorf("the health check asks %s, not the exposed port %s", u, exposed[0])
	}
	path := u[strings.LastIndex(u, "/"):]
	srv := startSingleNode(t)
	if code, out, errOut := runCmd(t, "health", "--url", srv+path); code != 0 {
		t.Errorf("health --url %s%s = %d: %s %s", srv, path, code, out, errOut)
	}
	if code, _, _ := runCmd(t, "health", "--url", srv+"/no-such-route"); code == 0 {
		t.Errorf("health on a 404 exited 0")
	}
}

// TestSystemdUnit checks deploy/agenttrail.service: its ExecStart is a
// serve command line serve parses and would start, keeping its data in the
// unit's state directory, run by a user that is not root.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "agenttrail.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("line %q is not KEY=VALUE", line)
			}
			keys[section+"."+k] = v
		}
	}
	exec := strings.Fields(keys["Service.ExecStart"])
	if len(exec) < 2 || !strings.HasSuffix(exec[0], "/agenttrail") {
		t.Fatalf("ExecStart %q does not run agenttrail", keys["Service.ExecStart"])
	}
	cfg := checkServe(t, "ExecStart", exec[1:])
	if want := "/var/lib/" + keys["Service.StateDirectory"]; keys["Service.StateDirectory"] == "" || cfg.DataDir != want {
		t.Errorf("serve keeps its data in %s; the unit's state directory is %s", cfg.DataDir, want)
	}
	if keys["Service.DynamicUser"] != "yes" && (keys["Service.User"] == "" || keys["Service.User"] == "root") {
		t.Errorf("the unit runs as root")
	}
	if keys["Service.KillSignal"] != "SIGTERM" {
		t.Errorf("KillSignal %q: serve stops cleanly on SIGTERM", keys["Service.KillSignal"])
	}
	if keys["Install.WantedBy"] == "" {
		t.Errorf("no [Install] WantedBy: systemctl enable would do nothing")
	}
}

// startSingleNode runs a single-node server until the test ends and returns its
// URL.
func startSingleNode(t *testing.T) string {
	t.Helper()
	m, err := app.Open(t.Context(), app.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m.URL()
}
