package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/integrity"
)

// runSigningKey writes a checkpoint signing key to FILE (mode 0600; "-" is
// stdout), for serve --signing-key: a new one, or with --store the one a
// cluster kept in its store before the key had to live outside it, so its
// verifier key stays the one the checkpoints signed so far verify with.
// The nodes remove that key from the store once they run with it from the
// file. FILE must not exist: a key is never overwritten.
func runSigningKey(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("signing-key", env)
	store := fs.String("store", "", "write the key a cluster kept in this store (postgres://…) instead of a new one")
	file, err := oneArg(fs, args, env, "usage: agenttrail signing-key FILE|- [--store postgres://…]")
	if err != nil {
		return err
	}
	var skey string
	if *store != "" {
		if skey, err = app.StoredSigningKey(ctx, *store); err != nil {
			return fmt.Errorf("--store: %w", err)
		}
		if skey == "" {
			return errors.New("--store: the store holds no signing key: make a new one (agenttrail signing-key FILE)")
		}
	} else if skey, _, err = note.GenerateKey(rand.Reader, integrity.KeyName); err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	key, err := integrity.NewKey(skey)
	if err != nil {
		return err
	}
	if file == "-" {
		fmt.Fprintln(env.Stdout, skey)
	} else if err := integrity.WriteKey(file, skey); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "give it to every node with a store (serve --signing-key FILE); checkpoints it signs verify with the verifier key\n%s\n", key.VerifierKey())
	return nil
}
