package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/agenttrail/agenttrail/capture/sandbox"
)

// runWatch records file operations under a sandbox's directory until
// interrupted:
//
//	agenttrail watch [--recursive] [--sandbox NAME] [--container ID] [--window 1s] [capture flags] DIR
//
// Each create, write burst, remove and rename is one sandbox event; the
// writes to a file within --window are counted in one event.
func runWatch(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("watch", env)
	var cf captureFlags
	cf.register(fs, env, "watch")
	recursive := fs.Bool("recursive", false, "watch the whole tree under DIR, new subdirectories included")
	name := fs.String("sandbox", "", "name of the sandbox DIR belongs to, recorded with each event")
	container := fs.String("container", "", "id of the container DIR belongs to, recorded with each event")
	window := fs.Duration("window", time.Second, "writes to one file within this window are one event")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: agenttrail watch [flags] DIR")
		fs.PrintDefaults()
	}
	dirs, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(dirs) != 1 {
		fs.Usage()
		return errUsage
	}
	if *window <= 0 {
		fmt.Fprintln(fs.Output(), "--window must be positive")
		return errUsage
	}
	// A directory that cannot be watched fails the start before the process
	// opens its Recorder: a failed start records nothing.
	if fi, err := os.Stat(dirs[0]); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dirs[0])
	}

	deps, err := cf.open(env)
	if err != nil {
		return err
	}
	defer deps.closeLogged("watch")
	w, err := sandbox.NewWatcher(sandbox.WatchConfig{
		Dir: dirs[0], Recursive: *recursive, ContainerID: *container, Name: *name, Window: *window,
		Recorder: deps.Recorder, Actor: deps.Identities.Default, Redactor: deps.Redactor, Logger: deps.Logger,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "agenttrail watch: %s (recursive: %v)\n", dirs[0], *recursive)
	return w.Run(ctx)
}

// parseInterleaved parses flags that may come before and after the
// positional arguments (watch DIR --recursive), which flag.Parse alone
// stops at, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		rest := fs.Args()
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil // after "--" everything is positional
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
