package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/server"
)

// runConsole prints a one-time link that signs a browser in to the web
// console. Like `agenttrail token`, it works on the data directory (or a
// cluster's store), so only someone who may read and write it can make one. The code is valid for ten
// minutes and once; the session it opens lasts twelve hours.
func runConsole(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("console", env)
	base := env.Getenv("AGENTTRAIL_SERVER")
	if base == "" {
		base = "http://127.0.0.1:7311"
	}
	fs.StringVar(&base, "server", base, "the server's URL as the browser reaches it (env AGENTTRAIL_SERVER)")
	data, store := tokensFlags(fs)
	role := fs.String("role", "read", "role of the session: read or admin")
	org := fs.String("org", server.AllOrgs, "the one org the session may see, or '*' for every org")
	if err := parse(fs, args); err != nil {
		return err
	}
	var link string
	err := withTokens(ctx, *data, *store, func(tokens *server.TokenFile) (err error) {
		link, err = app.SignInURLFrom(strings.TrimRight(base, "/"), tokens, server.Role(*role), *org, osUser(env))
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "Open this link within %v to sign in to the console (%s, org %s); it works once:\n", server.LoginTTL, *role, *org)
	fmt.Fprintln(env.Stdout, link)
	return nil
}
