package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// pgCluster is a PostgreSQL server of one test's own, in a directory of its
// own on a free port, so the test can stop it without disturbing the
// PostgreSQL other tests share.
type pgCluster struct {
	bin  string // directory of initdb and pg_ctl
	dir  string // parent of data; also the socket directory
	data string
	port int
	as   []string // command prefix that runs as the postgres user, if needed
}

// startPostgres initdbs and starts a cluster. The test is skipped unless
// AGENTTRAIL_TEST_POSTGRES is set (PostgreSQL tests are wanted), and fails
// when it is set but initdb and pg_ctl cannot be found.
func startPostgres(t *testing.T) *pgCluster {
	t.Helper()
	if os.Getenv("AGENTTRAIL_TEST_POSTGRES") == "" {
		t.Skip("AGENTTRAIL_TEST_POSTGRES is not set: skipping the tests that run a PostgreSQL of their own")
	}
	bin := pgBinDir()
	if bin == "" {
		t.Fatal("AGENTTRAIL_TEST_POSTGRES is set but initdb and pg_ctl were not found (in PATH, $AGENTTRAIL_TEST_PG_BIN or /usr/lib/postgresql/*/bin)")
	}
	// t.TempDir's parents are private to this user; initdb must run as
	// postgres when this is root, so the cluster gets a directory that
	// user can reach.
	dir, err := os.MkdirTemp("", "agenttrail-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &pgCluster{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, initdb needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.as = []string{"runuser", "-u", "postgres", "--"}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := c.run("initdb", "-D", c.data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	c.port, _ = strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	c.start(t)
	t.Cleanup(func() { c.run("pg_ctl", "-D", c.data, "-m", "immediate", "stop") })
	return c
}

// pgBinDir finds the directory holding initdb and pg_ctl.
func pgBinDir() string {
	if d := os.Getenv("AGENTTRAIL_TEST_PG_BIN"); d != "" {
		return d
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // the newest major version first
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func (c *pgCluster) run(tool string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, c.as...), filepath.Join(c.bin, tool)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// URL is the cluster's DSN for `agenttrail serve --store`.
func (c *pgCluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// start starts the server and waits until it accepts connections.
func (c *pgCluster) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", c.port, c.dir)
	if out, err := c.run("pg_ctl", "-D", c.data, "-l", filepath.Join(c.dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// stop stops the server the hard way: no checkpoint, connections cut.
func (c *pgCluster) stop(t *testing.T) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}
