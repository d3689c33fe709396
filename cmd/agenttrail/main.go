// Command agenttrail is the one binary of agenttrail: the server (serve), the
// client commands that talk to it over HTTP the way a user's tools would
// (query, demo, load), the capture proxies, and the benchmark of the
// performance targets in docs/architecture.md (bench).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/agenttrail/agenttrail/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command is one subcommand: it parses its own flags and runs until done or
// until ctx is cancelled.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env *Env) error
}

// Env is what a subcommand may touch of the process: its streams and
// environment variables. Tests build their own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

func commands() []command {
	return []command{
		{"serve", "run the server (embedded SQLite store by default)", runServe},
		{"console", "print a one-time link that signs a browser in to the web console", runConsole},
		{"query", "search events: filters as flags, a table or --json", runQuery},
		{"tail", "follow new events as they are recorded, until interrupted", runTail},
		{"export", "export every matching event: --format ndjson, csv, ocsf or cef; --bundle FILE for verify", runExport},
		{"verify", "prove a bundle complete and unaltered offline, or the live log consistent with a saved checkpoint", runVerify},
		{"trace", "one task across every surface: the events of a trace as a tree by parent span", runTrace},
		{"aggregate", "count events and LLM usage per source, actor, model, …: --by F", runAggregate},
		{"timeseries", "events per hour, day or week, drawn as bars: --interval hour [--by F]", runTimeseries},
		{"gaps", "heartbeat and sequence gaps: what agents failed to deliver", runGaps},
		{"demo", "send realistic traffic from all seven surfaces to a server", runDemo},
		{"proxy", "run a capture proxy: llm, mcp, egress, kube, aws, docker", runProxy},
		{"exec", "run a command and record it: agenttrail exec -- CMD ARGS...", runExec},
		{"watch", "record file operations under a sandbox directory", runWatch},
		{"load", "send synthetic events to a server as fast as it takes them; report the rate", runLoad},
		{"bench", "measure ingest and query performance against the targets", runBench},
		{"sinks", "push sinks: state, replay NAME --since T, dead-letters NAME [--retry]", runSinks},
		{"config", "check a configuration file without starting anything: config check FILE", runConfig},
		{"health", "exit 0 when a server answers its readiness check: the health check of a container", runHealth},
		{"token", "create, list and revoke the server's bearer tokens", runToken},
		{"signing-key", "write a checkpoint signing key to a file for serve --signing-key (a cluster needs one)", runSigningKey},
		{"budget", "set, list and remove spending limits; see what each has spent", runBudget},
	}
}

// errUsage means the flags were wrong; the flag package has printed why.
var errUsage = errors.New("usage")

// Run runs the subcommand named by args[0] and returns the process exit code:
// 0 on success, 2 on a usage error, 1 on any other error.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], env)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			// A wrapped command (exec, proxy mcp over stdio) exits with its
			// own code; agenttrail passes it through.
			var exit interface{ ExitCode() int }
			if errors.As(err, &exit) {
				return exit.ExitCode()
			}
			fmt.Fprintf(stderr, "agenttrail %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "agenttrail: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: agenttrail <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'agenttrail <command> -h' for the flags of a command.")
}

// newFlagSet returns a FlagSet that reports errors instead of exiting.
func newFlagSet(name string, env *Env) *flag.FlagSet {
	fs := flag.NewFlagSet("agenttrail "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parse parses args, mapping flag errors to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return fmt.Sprint([]string(*s)) }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// serverFlags are the flags of every command that talks to a server. The
// token is --token, else AGENTTRAIL_TOKEN, else, for a server on this host,
// the admin token `agenttrail serve` left in <--data>/admin.token: so the
// commands of the README work against a fresh local server as written,
// while the admin token is never sent to another host.
type serverFlags struct {
	server string
	token  string // resolved after every flag that bears on it

	given string // --token or AGENTTRAIL_TOKEN
	data  string

	// What was given on the command line, for repeating it (demo's hint).
	serverSet, tokenSet, dataSet bool
}

func (f *serverFlags) register(fs *flag.FlagSet, env *Env) {
	f.server = env.Getenv("AGENTTRAIL_SERVER")
	if f.server == "" {
		f.server = "http://127.0.0.1:7311"
	}
	f.given = env.Getenv("AGENTTRAIL_TOKEN")
	f.data = "./agenttrail-data"
	f.resolve()
	set := func(p *string, given *bool) func(string) error {
		return func(v string) error { *p, *given = v, true; f.resolve(); return nil }
	}
	fs.Func("server", "agenttrail server URL, or several comma-separated to fail over between (env AGENTTRAIL_SERVER; default "+f.server+")", set(&f.server, &f.serverSet))
	fs.Func("token", "bearer token (env AGENTTRAIL_TOKEN; default for a local server: <data>/admin.token)", set(&f.given, &f.tokenSet))
	fs.Func("data", "data directory of a local server, whose admin.token is used when no token is given (default ./agenttrail-data)", set(&f.data, &f.dataSet))
}

// repeat returns the flags that reach the same server with the same token
// as this command did, for a command line to suggest, and a note when the
// token cannot be repeated (it was given with --token and is not printed).
func (f *serverFlags) repeat() (args []string, note string) {
	if f.serverSet {
		args = append(args, "--server", shellQuote(f.server))
	}
	if f.dataSet {
		args = append(args, "--data", shellQuote(f.data))
	}
	if f.tokenSet {
		note = "add the --token you gave this command"
	}
	return args, note
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (f *serverFlags) resolve() {
	f.token = f.given
	if f.token != "" {
		return
	}
	u, err := url.Parse(f.server)
	if err != nil {
		return
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return
	}
	if b, err := os.ReadFile(filepath.Join(f.data, app.AdminTokenFile)); err == nil {
		f.token = strings.TrimSpace(string(b))
	}
}

// subcommand is one subcommand of a command that has several: its name,
// its one line of help ("ARGS  what it does", or just what it does) and what runs
// it with the arguments after its name.
type subcommand struct {
	name, help string
	run        func(args []string) error
}

// subcommandHelp aligns the help of subs in columns.
func subcommandHelp(w io.Writer, subs []subcommand) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range subs {
		args, help, _ := strings.Cut(s.help, "  ")
		if help == "" {
			args, help = "", args
		}
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(s.name+" "+args), help)
	}
	tw.Flush()
}

// runSubcommand runs the subcommand of cmd that args name. Without one,
// or with -h, it prints the usage listing every subcommand.
func runSubcommand(cmd string, args []string, env *Env, subs []subcommand) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	usage := func() {
		fmt.Fprintf(env.Stderr, "usage: agenttrail %s %s [flags]\n\n", cmd, strings.Join(names, "|"))
		subcommandHelp(env.Stderr, subs)
		fmt.Fprintf(env.Stderr, "\nRun 'agenttrail %s <subcommand> -h' for its flags.\n", cmd)
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage()
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "agenttrail %s: unknown subcommand %q (want %s)\n", cmd, args[0], strings.Join(names, ", "))
	return errUsage
}
