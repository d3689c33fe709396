package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/agenttrail/agenttrail/export"
)

// runExport is `agenttrail export`: every event the filters match, in one
// format, to stdout or a file.
func runExport(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("export", env)
	var (
		sf     serverFlags
		ff     filterFlags
		format = fs.String("format", export.NDJSON, "ndjson, csv, ocsf or cef")
		out    = fs.String("out", "", "write to this file instead of stdout")
		bundle = fs.String("bundle", "", "write a verifiable bundle of one org's events to this file (zip) instead, for `agenttrail verify`")
	)
	sf.register(fs, env)
	ff.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if export.ContentType(*format) == "" {
		fmt.Fprintf(env.Stderr, "--format must be ndjson, csv, ocsf or cef, not %q\n", *format)
		return errUsage
	}
	filter, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	c := newClient(sf)
	write := func(w io.Writer) error { return c.Export(ctx, filter, *format, w) }
	if *bundle != "" {
		if *out != "" {
			fmt.Fprintln(env.Stderr, "--bundle and --out both name the output file: give one")
			return errUsage
		}
		*out = *bundle
		write = func(w io.Writer) error { return c.Bundle(ctx, filter, w) }
	}
	if *out == "" {
		return write(env.Stdout)
	}
	// A cut export must not leave a file that looks complete: write to a
	// temporary file beside the target and rename it only at the end.
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".partial-*")
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing to remove
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	return nil
}
