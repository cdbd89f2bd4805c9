package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tandemhq/tandem/storage"
)

// runMigrate implements `tandem migrate --data DIR --server URL [--key
// KEY]`: it moves every document of a stopped single-node server's data
// file into a running server, typically a node of a cluster, through its
// HTTP API: each document's whole history (ops, snapshots, comments) is
// exported from the file and imported by the server, as `tandem export`
// and `tandem import --server` would one by one. A document the server
// has already is left as it is (so a migration that stopped half-way can
// be run again). Channel histories, read receipts and users are not moved:
// they are rebuilt as the cluster is used.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory of a stopped single-node server (required)")
	wait := fs.Duration("lock-timeout", storage.DefaultLockTimeout, "how long to wait for a running server to release the data file")
	server, key, timeout := remoteFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tandem migrate --data DIR --server URL [--key KEY]")
		fmt.Fprintln(stderr, "\nMove every document of a stopped single-node server's data file into a\nrunning server (a node of a cluster: see docs/cluster.md) through its HTTP\nAPI. Documents the server already has are skipped, so it can be run again.\n\nFlags:")
		fs.PrintDefaults()
	}
	if stop, err := parseFlags(fs, args); stop {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *data == "":
		return usageError(fs, "--data is required")
	case *server == "":
		return usageError(fs, "--server is required")
	}
	rm, err := newRemote(*server, *key, *timeout)
	if err != nil {
		return usageError(fs, err.Error())
	}
	db, err := openStopped("migrate", *data, *wait, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	infos, err := db.ListDocs()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	moved, skipped := 0, 0
	for _, info := range infos {
		var buf bytes.Buffer
		if err := db.Export(info.ID, &buf); err != nil {
			return fmt.Errorf("migrate: export %q: %w", info.ID, err)
		}
		got, err := rm.importDoc(ctx, &buf)
		var re *remoteError
		switch {
		case errors.As(err, &re) && re.code == "conflict":
			skipped++
			fmt.Fprintf(stdout, "skipped %q: the server has it already\n", info.ID)
			continue
		case err != nil:
			return fmt.Errorf("migrate: import %q: %w (%d moved so far; run again to go on)", info.ID, err, moved)
		}
		moved++
		fmt.Fprintf(stdout, "moved %q at version %d\n", got.ID, got.Version)
	}
	_, err = fmt.Fprintf(stdout, "%d documents moved, %d already there\n", moved, skipped)
	return err
}
