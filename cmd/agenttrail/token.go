package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/server"
)

// runToken manages the server's bearer tokens in <data>/tokens.json, or a
// cluster's in its store (--store postgres://…). It works on the file or
// the store, not over HTTP, so it needs no token itself: whoever may write
// the data directory (or the store) may manage tokens. A running server
// picks the change up within a second. Each change is recorded with who
// made it (the OS user), and the server records it in the trail as an
// audit event (source audit, action token.create or token.revoke) when it
// next reads the tokens.
func runToken(ctx context.Context, args []string, env *Env) error {
	return runSubcommand("token", args, env, []subcommand{
		{"create", "make a token: --role ingest|read|admin [--org O] [--name N]; prints it once",
			func(args []string) error { return tokenCreate(ctx, args, env) }},
		{"list", "list the tokens (never their secrets)", func(args []string) error { return tokenList(ctx, args, env) }},
		{"revoke", "revoke a token by name or id", func(args []string) error { return tokenRevoke(ctx, args, env) }},
	})
}

// tokensFlags adds the flags that say where the tokens are: a data
// directory, or on a cluster the store every node reads them from.
func tokensFlags(fs *flag.FlagSet) (data, store *string) {
	data = fs.String("data", "./agenttrail-data", "data directory of the server")
	store = fs.String("store", "sqlite", "the server's store: on a cluster, whose tokens live in the store, its postgres:// URL (as the nodes' --store)")
	return data, store
}

// withTokens runs do on the tokens of data and store (app.Tokens).
func withTokens(ctx context.Context, data, store string, do func(*server.TokenFile) error) error {
	tokens, done, err := app.Tokens(ctx, data, store)
	if err != nil {
		return err
	}
	defer done()
	return do(tokens)
}

// osUser names the person changing tokens, for the audit record.
func osUser(env *Env) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return strings.ReplaceAll(u.Username, " ", "_")
	}
	if u := env.Getenv("USER"); u != "" {
		return u
	}
	return "unknown-user"
}

func tokenCreate(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("token create", env)
	role := fs.String("role", "", "ingest (POST events), read (query, aggregate, export, stream, gaps) or admin (everything)")
	org := fs.String("org", "", "the one org the token may write or read, or '*' for every org")
	name := fs.String("name", "", "unique name, shown in the audit trail (default: <role>-<id>)")
	data, store := tokensFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *role == "" || *org == "" {
		fmt.Fprintln(env.Stderr, "--role and --org are required")
		return errUsage
	}
	return withTokens(ctx, *data, *store, func(tokens *server.TokenFile) error {
		token, rec, err := tokens.Create(*name, server.Role(*role), *org, osUser(env), time.Now())
		if err != nil {
			return err
		}
		// The token is the last word, so scripts can take it with awk '{print $NF}'.
		fmt.Fprintf(env.Stdout, "created %s token %q (id %s) for org %s; it is shown only now:\n%s\n", rec.Role, rec.Name, rec.ID, rec.Org, token)
		return nil
	})
}

func tokenList(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("token list", env)
	data, store := tokensFlags(fs)
	all := fs.Bool("all", false, "include revoked tokens")
	if err := parse(fs, args); err != nil {
		return err
	}
	var recs []server.TokenRecord
	err := withTokens(ctx, *data, *store, func(tokens *server.TokenFile) (err error) {
		recs, err = tokens.List()
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tROLE\tORG\tCREATED\tSTATUS")
	for _, t := range recs {
		status := "active"
		if t.Revoked() {
			if !*all {
				continue
			}
			status = "revoked " + t.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.ID, t.Role, t.Org, t.CreatedAt.Format(time.RFC3339), status)
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("token revoke", env)
	data, store := tokensFlags(fs)
	target, err := oneArg(fs, args, env, "usage: agenttrail token revoke NAME|ID [--data DIR | --store postgres://…]")
	if err != nil {
		return err
	}
	var rec server.TokenRecord
	err = withTokens(ctx, *data, *store, func(tokens *server.TokenFile) (err error) {
		rec, err = tokens.Revoke(target, osUser(env), time.Now())
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "revoked %s token %q (id %s) for org %s\n", rec.Role, rec.Name, rec.ID, rec.Org)
	return nil
}

// oneArg parses args, whose one argument (a name, a file) comes first
// (agenttrail token revoke NAME --data d) or after the flags, and returns
// it; without it, usage is printed.
func oneArg(fs *flag.FlagSet, args []string, env *Env, usage string) (string, error) {
	var arg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		arg, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", errUsage
	}
	if arg == "" && fs.NArg() == 1 {
		arg = fs.Arg(0)
	} else if arg == "" || fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, usage)
		return "", errUsage
	}
	return arg, nil
}
