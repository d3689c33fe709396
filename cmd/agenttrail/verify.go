package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/agenttrail/agenttrail/integrity"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// errUnverified is verify's failure: the problems are printed already, and
// the exit code is 1.
var errUnverified = exitError(1)

type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }
func (e exitError) ExitCode() int { return int(e) }

// runVerify is `agenttrail verify`:
//
//	agenttrail verify FILE [--key KEY]                     a bundle, offline
//	agenttrail verify --server URL --checkpoint FILE [--key KEY]   the live log against a saved checkpoint
//
// It prints one line per problem and a summary line, and exits 0 only when
// everything verified.
func runVerify(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("verify", env)
	var sf serverFlags
	sf.register(fs, env)
	key := fs.String("key", "", "the verifier key to trust (a key in note format, or a file holding one): the one GET /v1/integrity/key published; default: the bundle's own, which proves only that the bundle is self-consistent")
	saved := fs.String("checkpoint", "", "a checkpoint saved earlier (a file): check that the server's log is consistent with it, not cut off or rewritten")
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	vkey, err := readKey(*key)
	if err != nil {
		return err
	}
	switch {
	case *saved != "" && file != "":
		fmt.Fprintln(env.Stderr, "give a bundle FILE or --checkpoint, not both")
		return errUsage
	case *saved != "":
		return verifyServer(ctx, sf, *saved, vkey, env)
	case file == "":
		fmt.Fprintln(env.Stderr, "usage: agenttrail verify FILE [--key KEY] | agenttrail verify --server URL --checkpoint FILE [--key KEY]")
		return errUsage
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	rep, err := integrity.Verify(f, fi.Size(), vkey)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(env.Stdout, p.String())
	}
	if vkey == "" {
		fmt.Fprintln(env.Stdout, "note: no --key given; the checkpoint was checked against the bundle's own key")
	}
	c := rep.Checkpoint
	fmt.Fprintf(env.Stdout, "%s: org %s, leaves %d..%d of %d (checkpoint %s): %d events, %d verified, %d excluded by the export's filters, %d problems\n",
		verdict(rep.OK()), rep.Org, rep.First, rep.End-1, c.Size, c.Root, rep.Events, rep.Verified, rep.Excluded, len(rep.Problems))
	if !rep.OK() {
		return errUnverified
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "VERIFIED"
	}
	return "FAILED"
}

// readKey returns the verifier key k names: the key itself, or a file
// holding it.
func readKey(k string) (string, error) {
	if k == "" {
		return k, nil
	}
	if _, err := note.NewVerifier(k); err == nil {
		return k, nil
	}
	b, err := os.ReadFile(k)
	if err != nil {
		return "", fmt.Errorf("--key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// verifyServer checks that the server's log is consistent with a
// checkpoint saved earlier: the server's latest checkpoint is no smaller
// and a consistency proof joins the two.
func verifyServer(ctx context.Context, sf serverFlags, file, vkey string, env *Env) error {
	msg, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	c := newClient(sf)
	if vkey == "" {
		if vkey, err = c.IntegrityKey(ctx); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "note: no --key given; using the key the server publishes")
	}
	old, err := integrity.OpenCheckpoint(msg, vkey)
	if err != nil {
		fmt.Fprintf(env.Stdout, "saved checkpoint: %s\n", noteProblem(err))
		fmt.Fprintln(env.Stdout, "FAILED: the saved checkpoint does not verify")
		return errUnverified
	}
	latest, err := c.Checkpoint(ctx, old.Org)
	if err != nil {
		return err
	}
	var proof tlog.TreeProof
	if latest.TreeSize >= old.Size && old.Size > 0 {
		p, err := c.Consistency(ctx, old.Org, old.Size, latest.TreeSize)
		if err != nil {
			return err
		}
		for _, h := range p.Proof {
			var x tlog.Hash
			copy(x[:], h)
			proof = append(proof, x)
		}
	}
	if err := integrity.CheckConsistency(msg, []byte(latest.Note), vkey, proof); err != nil {
		fmt.Fprintln(env.Stdout, noteProblem(err))
		fmt.Fprintf(env.Stdout, "FAILED: org %s: the log is not consistent with the saved checkpoint of %d leaves\n", old.Org, old.Size)
		return errUnverified
	}
	fmt.Fprintf(env.Stdout, "VERIFIED: org %s: the log of %d leaves extends the saved checkpoint of %d leaves (root %s)\n",
		old.Org, latest.TreeSize, old.Size, old.Root)
	return nil
}

// noteProblem says what a checkpoint's signature problem is in verify's
// words.
func noteProblem(err error) string {
	var unknown *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unknown):
		return "unknown key: " + err.Error()
	case errors.As(err, &invalid):
		return "signature invalid: " + err.Error()
	}
	return err.Error()
}
