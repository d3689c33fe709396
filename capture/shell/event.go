package shell

import (
	"context"
	"fmt"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// maxDescribedCommand bounds the command line quoted in a description; the
// whole of it is the resource id and metadata.shell.
const maxDescribedCommand = 256

// ActionExec is the action of every shell event.
const ActionExec = "shell_exec"

// ResourceCommand is the resource type of shell events; the resource id is
// the command line.
const ResourceCommand = "command"

// Metadata is what a shell event holds under metadata.shell. Command is the
// program as it was named; Args, the command line and the output are
// redacted. ExitCode is 128+N for a command killed by signal N, 127 or 126
// for one that could not be started.
type Metadata struct {
	Command     string   `json:"command"`
	Args        []string `json:"args"`
	Cwd         string   `json:"cwd,omitempty"`
	ExitCode    int      `json:"exit_code"`
	Signal      string   `json:"signal,omitempty"`
	Stdout      string   `json:"stdout"`
	Stderr      string   `json:"stderr"`
	StdoutBytes int64    `json:"stdout_bytes"`
	StderrBytes int64    `json:"stderr_bytes"`
	Truncated   bool     `json:"truncated"`
	Captured    bool     `json:"captured"`
	Host        string   `json:"host,omitempty"`
}

// record builds the shell event of x, redacted, and hands it to the
// recorder.
func (x *Execution) record(ctx context.Context, end time.Time, res agenttrail.Result, m Metadata, desc string) agenttrail.Event {
	m.Command, m.Args, m.Cwd, m.Host = x.argv[0], x.argv[1:], x.cwd, x.host
	// "exit 3 after 1.2 s: sh -c 'echo hi; exit 3'", or why it ended
	// otherwise in place of the exit code.
	what := fmt.Sprintf("exit %d", m.ExitCode)
	if desc != "" {
		what = desc
	}
	desc = fmt.Sprintf("%s after %s: %s", what, capture.Took(end.Sub(x.start)), capture.Shorten(commandLine(x.argv), maxDescribedCommand))
	e := agenttrail.Event{
		Time:         x.start,
		DurationMS:   float64(end.Sub(x.start).Microseconds()) / 1000,
		Source:       agenttrail.SourceShell,
		Action:       ActionExec,
		ResourceType: ResourceCommand,
		ResourceID:   commandLine(x.argv),
		Result:       res,
		Description:  desc,
	}
	x.actor.Apply(&e)
	x.span.Apply(&e)
	if err := e.SetMetadata("shell", m); err != nil {
		x.opts.Logger.Error("shell: encode metadata", "err", err)
	}
	return x.rec.Recorded(ctx, e)
}
