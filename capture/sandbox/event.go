package sandbox

import (
	"context"
	"strings"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// Sandbox is what a sandbox event holds under metadata.sandbox.
type Sandbox struct {
	// ContainerID is the container's full id when the proxy saw it created,
	// otherwise the id or name the call gave.
	ContainerID string `json:"container_id,omitempty"`
	// Op is one of the Op constants, or for the file watcher FileCreate,
	// FileWrite, FileDelete or FileRename.
	Op    string `json:"op"`
	Image string `json:"image,omitempty"`
	// Name is the container's name (for a rename, the new one), or the
	// sandbox name a file watcher was given.
	Name string `json:"name,omitempty"`
	// Command is the command line of an exec, or of a created container
	// (entrypoint and command), redacted.
	Command string `json:"command,omitempty"`
	// Signal is the signal of a kill.
	Signal string `json:"signal,omitempty"`
	// Path is the file path: in the container for `docker cp`, relative to
	// the watched directory for the file watcher.
	Path string `json:"path,omitempty"`
	// NewPath is where a watched file was renamed to, when that is inside
	// the watched tree.
	NewPath string `json:"new_path,omitempty"`
	// Root is the watched directory, absolute: Path and NewPath are
	// relative to it.
	Root string `json:"root,omitempty"`
	// Size is the file's size after the operation (absent for a delete, a
	// directory, or a file gone by the time it was recorded).
	Size *int64 `json:"size,omitempty"`
	// Mode is the file's permissions after a chmod, in octal ("0755").
	Mode string `json:"mode,omitempty"`
	// APIPath is the Engine API path of the call, with its version prefix.
	APIPath string `json:"api_path,omitempty"`
	// ExecID is the exec instance of an exec create or start.
	ExecID string `json:"exec_id,omitempty"`
	// Detach says an exec was started detached (docker exec -d).
	Detach bool `json:"detach,omitempty"`
	// Privileged says a container or exec asked for extended privileges.
	Privileged bool `json:"privileged,omitempty"`
	// Writes counts the writes coalesced into one file event.
	Writes int `json:"writes,omitempty"`
	// Dir says the file event is about a directory.
	Dir bool `json:"dir,omitempty"`
}

// record completes e (actor, metadata) and hands it to rec, which redacts
// it.
func record(ctx context.Context, rec capture.Recorder, actor capture.Actor, e agenttrail.Event, m Sandbox) error {
	e.Source = agenttrail.SourceSandbox
	actor.Apply(&e)
	if err := e.SetMetadata("sandbox", m); err != nil {
		return err
	}
	rec.Record(context.WithoutCancel(ctx), e)
	return nil
}

// joinCommand renders argv as one shell-quoted line, so that the Redactor
// sees "--password hunter2" as the pair it is.
func joinCommand(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shellQuote(a))
	}
	return b.String()
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	plain := true
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_./:=,+@%", c) >= 0) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
