package main

import (
	"flag"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/agenttrail/agenttrail/app"
)

// composePassword stands in for the one variable deploy/compose.yaml needs.
const composePassword = "s3cret-for-the-test"

// loadCompose decodes a compose file with compose-go, the Compose
// specification's own loader: its schema refuses any key it does not know.
func loadCompose(t *testing.T, content []byte, env map[string]string) (*types.Project, error) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml"), Content: content}},
		Environment: env,
	})
}

func readCompose(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestComposeStrict checks the loader the compose test relies on refuses
// what it must: a key the specification does not have, and a start without
// the database password.
func TestComposeStrict(t *testing.T) {
	b := readCompose(t)
	env := map[string]string{"AGENTTRAIL_DB_PASSWORD": composePassword}
	if _, err := loadCompose(t, b, env); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	typo := strings.Replace(string(b), "\n  ingest1:\n", "\n  ingest1:\n    replica: 2\n", 1)
	if typo == string(b) {
		t.Fatal("no ingest1 service to put a typo in")
	}
	if _, err := loadCompose(t, []byte(typo), env); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("an unknown key in a service loaded: %v", err)
	}
	if _, err := loadCompose(t, b, nil); err == nil || !strings.Contains(err.Error(), "AGENTTRAIL_DB_PASSWORD") {
		t.Errorf("loaded without AGENTTRAIL_DB_PASSWORD: %v", err)
	}
}

// TestCompose checks deploy/compose.yaml: a 3-node JetStream cluster (its
// command parsed by nats-server's own flag parser), PostgreSQL, 2 ingest
// nodes, 2 writers and a query node whose command lines and configuration
// file serve parses and would start, on a stream of 3 replicas, each with a
// health check on its own port and its data in its own volume, the writers
// and the query node with the signing key from a secret.
func TestCompose(t *testing.T) {
	p, err := loadCompose(t, readCompose(t), map[string]string{"AGENTTRAIL_DB_PASSWORD": composePassword})
	if err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	srv := startSingleNode(t)
	bin := imageEntrypoint(t)

	natsServers := map[string]*natsserver.Options{} // service -> its options
	roles := map[string][]string{}                  // role -> services
	dataVolumes := map[string]string{}              // volume -> service
	var nodes []app.Config
	for name, s := range p.Services {
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
			t.Errorf("%s: no health check", name)
			continue
		}
		switch {
		case strings.HasPrefix(s.Image, "nats:"):
			natsServers[name] = checkComposeNATS(t, name, s)
		case strings.HasPrefix(s.Image, "postgres:"):
			checkComposePostgres(t, name, s)
		default:
			if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" || filepath.Clean(s.Build.Context) != filepath.Clean(filepath.Join(p.WorkingDir, "..")) {
				t.Errorf("%s: image %q is not built from deploy/Dockerfile at the repository root: %+v", name, s.Image, s.Build)
			}
			cfg := checkServe(t, name, composeServeArgs(t, p, name, s))
			roles[cfg.Role] = append(roles[cfg.Role], name)
			nodes = append(nodes, cfg)
			checkComposeSigningKey(t, p, name, s, cfg)

			_, port, err := net.SplitHostPort(cfg.Addr)
			if err != nil {
				t.Fatalf("%s: --addr %q: %v", name, cfg.Addr, err)
			}
			checkHealthCmd(t, name, []string(s.HealthCheck.Test), bin, port, srv)
			for _, pub := range s.Ports {
				if strconv.Itoa(int(pub.Target)) != port {
					t.Errorf("%s publishes container port %d; serve listens on %s", name, pub.Target, port)
				}
				if pub.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes port %d on %q: plaintext belongs on loopback, behind TLS", name, pub.Target, pub.HostIP)
				}
			}
			v := volumeAt(s, cfg.DataDir)
			if v == "" {
				t.Errorf("%s keeps its data in %s, which is no named volume", name, cfg.DataDir)
			} else if other, ok := dataVolumes[v]; ok {
				t.Errorf("%s and %s share the data volume %s", name, other, v)
			}
			dataVolumes[v] = name
			for other, o := range p.Services {
				backend := strings.HasPrefix(o.Image, "postgres:") || strings.HasPrefix(o.Image, "nats:")
				if backend && s.DependsOn[other].Condition != types.ServiceConditionHealthy {
					t.Errorf("%s does not wait for %s to be healthy", name, other)
				}
			}
		}
	}

	if len(natsServers) != 3 {
		t.Errorf("%d NATS servers, want a 3-node JetStream cluster", len(natsServers))
	}
	for name, o := range natsServers {
		for other, oo := range natsServers {
			if o.Cluster.Name != oo.Cluster.Name {
				t.Errorf("%s is in cluster %q, %s in %q", name, o.Cluster.Name, other, oo.Cluster.Name)
			}
			if !slices.ContainsFunc(o.Routes, func(u *url.URL) bool { return u.Hostname() == other && u.Port() == strconv.Itoa(oo.Cluster.Port) }) {
				t.Errorf("%s has no route to %s:%d: %v", name, other, oo.Cluster.Port, o.Routes)
			}
		}
	}
	for role, want := range map[string]int{app.RoleIngest: 2, app.RoleWriter: 2, app.RoleQuery: 1} {
		if len(roles[role]) != want {
			t.Errorf("role %s: services %v, want %d", role, roles[role], want)
		}
	}
	if len(roles) != 3 {
		t.Errorf("roles %v, want ingest, writer and query", roles)
	}
	for _, cfg := range nodes {
		if cfg.NATS.Replicas != len(natsServers) {
			t.Errorf("the stream has %d replicas on %d NATS servers, want one on each", cfg.NATS.Replicas, len(natsServers))
		}
		for _, u := range strings.Split(cfg.NATS.URL, ",") {
			pu, err := url.Parse(u)
			if err != nil {
				t.Fatalf("--nats %q: %v", cfg.NATS.URL, err)
			}
			o, ok := natsServers[pu.Hostname()]
			if !ok || pu.Port() != strconv.Itoa(o.Port) {
				t.Errorf("--nats %s is no NATS server's client port", u)
			}
		}
		su, err := url.Parse(cfg.Store)
		if err != nil || su.Scheme != "postgres" {
			t.Fatalf("--store %q: want a postgres:// URL", cfg.Store)
		}
		pg := p.Services[su.Hostname()]
		if !strings.HasPrefix(pg.Image, "postgres:") || su.Port() != "5432" {
			t.Errorf("--store %s is not the postgres service", cfg.Store)
		}
		if su.User.Username() != env(pg, "POSTGRES_USER") || su.Path != "/"+env(pg, "POSTGRES_DB") {
			t.Errorf("--store %s: the postgres service makes user %q, database %q", cfg.Store, env(pg, "POSTGRES_USER"), env(pg, "POSTGRES_DB"))
		}
	}
	for _, names := range roles {
		for _, name := range names {
			if got := env(p.Services[name], "PGPASSWORD"); got != composePassword {
				t.Errorf("%s: PGPASSWORD %q, not the database's password", name, got)
			}
		}
	}
}

// checkComposeSigningKey checks a node with a store signs with a key file
// compose mounts from a secret of its own (not the database, not the
// image), and that an ingest node, which signs nothing, is given no key.
func checkComposeSigningKey(t *testing.T, p *types.Project, name string, s types.ServiceConfig, cfg app.Config) {
	t.Helper()
	if cfg.Role == app.RoleIngest {
		if len(s.Secrets) > 0 || cfg.SigningKey != "" {
			t.Errorf("%s: an ingest node signs nothing, yet is given secrets %v, --signing-key %q", name, s.Secrets, cfg.SigningKey)
		}
		return
	}
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = "/run/secrets/" + sec.Source
		} else if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		if target != cfg.SigningKey {
			continue
		}
		if obj, ok := p.Secrets[sec.Source]; !ok || obj.File == "" {
			t.Errorf("%s: --signing-key %s is secret %q, which is no file on the host", name, cfg.SigningKey, sec.Source)
		}
		return
	}
	t.Errorf("%s: --signing-key %q is not a secret the service mounts (%v)", name, cfg.SigningKey, s.Secrets)
}

// composeServeArgs is a service's command line with its --config file,
// which compose mounts from the file's configs, written where serve can
// read it.
func composeServeArgs(t *testing.T, p *types.Project, name string, s types.ServiceConfig) []string {
	t.Helper()
	files := map[string]string{}
	for _, c := range s.Configs {
		obj, ok := p.Configs[c.Source]
		if !ok || obj.Content == "" {
			t.Fatalf("%s mounts config %q, which has no content in the file", name, c.Source)
		}
		files[c.Target] = obj.Content
	}
	return withFiles(t, name, []string(s.Command), files)
}

// withFiles returns args with the file of --config (which a container
// mounts from files, by path) written to a temporary file: serve then reads
// it with the configuration parser it runs with.
func withFiles(t *testing.T, where string, args []string, files map[string]string) []string {
	t.Helper()
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		var path string
		switch a := out[i]; {
		case (a == "--config" || a == "-config") && i+1 < len(out):
			i++
			path = out[i]
		case strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config="):
			_, path, _ = strings.Cut(a, "=")
		default:
			continue
		}
		content, ok := files[path]
		if !ok {
			t.Fatalf("%s: --config %s is not mounted", where, path)
		}
		f := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		out[i] = strings.Replace(out[i], path, f, 1)
	}
	return out
}

// imageEntrypoint is the binary the image of deploy/Dockerfile runs.
func imageEntrypoint(t *testing.T) string {
	t.Helper()
	d := parseDockerfile(t, filepath.Join("..", "..", "deploy", "Dockerfile"))
	entry := d.final["ENTRYPOINT"]
	if len(entry) != 1 {
		t.Fatalf("Dockerfile ENTRYPOINT %q", entry)
	}
	return execForm(t, "ENTRYPOINT", entry[0])[0]
}

// checkHealthCmd checks a container health check is the image's health
// command on the server's port, and that its path answers 200 on a real
// server at srv.
func checkHealthCmd(t *testing.T, where string, test []string, bin, port, srv string) {
	t.Helper()
	if len(test) < 3 || test[0] != "CMD" || test[1] != bin || test[2] != "health" {
		t.Errorf("%s: health check %q, want [CMD %s health --url …] (the image has no shell or curl)", where, test, bin)
		return
	}
	i := slices.Index(test, "--url")
	if i < 0 || i+1 >= len(test) {
		t.Errorf("%s: health check %q names no --url", where, test)
		return
	}
	u, err := url.Parse(test[i+1])
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() != port {
		t.Errorf("%s: health check asks %s; serve listens on port %s", where, test[i+1], port)
		return
	}
	if u.Path != "/readyz" && u.Path != "/livez" {
		t.Errorf("%s: health check asks %s, want /readyz or /livez", where, u.Path)
	}
	if code, out, errOut := runCmd(t, "health", "--url", srv+u.Path); code != 0 {
		t.Errorf("%s: health --url %s%s = %d: %s %s", where, srv, u.Path, code, out, errOut)
	}
}

// checkComposeNATS parses a NATS service's command with nats-server's own
// flag parser and checks it runs JetStream in a cluster, its store in a
// volume, and that its health check asks its monitoring port.
func checkComposeNATS(t *testing.T, name string, s types.ServiceConfig) *natsserver.Options {
	t.Helper()
	args := []string(s.Command)
	if len(args) == 0 || args[0] != "nats-server" {
		t.Fatalf("%s runs %q, want nats-server", name, args)
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	noop := func() {}
	o, err := natsserver.ConfigureOptions(fs, args[1:], noop, noop, noop)
	if err != nil {
		t.Fatalf("%s: nats-server refuses %q: %v", name, args[1:], err)
	}
	if o.Port == 0 {
		o.Port = natsserver.DEFAULT_PORT
	}
	if !o.JetStream || o.Cluster.Name == "" || o.Cluster.Port == 0 || o.ServerName != name {
		t.Errorf("%s: JetStream %v, cluster %q port %d, server name %q: want JetStream in a named cluster, named after the service", name, o.JetStream, o.Cluster.Name, o.Cluster.Port, o.ServerName)
	}
	if volumeAt(s, o.StoreDir) == "" {
		t.Errorf("%s keeps JetStream in %q, which is no named volume", name, o.StoreDir)
	}
	test := []string(s.HealthCheck.Test)
	if test[0] != "CMD" || !slices.ContainsFunc(test, func(a string) bool {
		u, err := url.Parse(a)
		return err == nil && u.Port() == strconv.Itoa(o.HTTPPort) && u.Path == "/healthz"
	}) {
		t.Errorf("%s: health check %q does not ask /healthz on the monitoring port %d", name, test, o.HTTPPort)
	}
	return o
}

func checkComposePostgres(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	if volumeAt(s, "/var/lib/postgresql/data") == "" {
		t.Errorf("%s keeps its database in no named volume", name)
	}
	if env(s, "POSTGRES_PASSWORD") != composePassword {
		t.Errorf("%s: POSTGRES_PASSWORD is not AGENTTRAIL_DB_PASSWORD", name)
	}
	if test := []string(s.HealthCheck.Test); !slices.Contains(test, "pg_isready") {
		t.Errorf("%s: health check %q, want pg_isready", name, test)
	}
}

// volumeAt returns the named volume a service mounts at target, or "".
func volumeAt(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && filepath.Clean(v.Target) == filepath.Clean(target) {
			return v.Source
		}
	}
	return ""
}

func env(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}
