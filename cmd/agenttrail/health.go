package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// runHealth asks a server whether it is ready (or live): the health check of
// a container image that has no shell and no curl. It exits 0 when the
// server answers 200 in time, and fails otherwise.
func runHealth(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("health", env)
	url := fs.String("url", "http://127.0.0.1:7311/readyz", "endpoint to check: the server's /readyz or /livez")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s", *url, resp.Status)
	}
	fmt.Fprintf(env.Stdout, "%s: ok\n", *url)
	return nil
}
