package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/tandemhq/tandem/storage"
)

// runBackup implements `tandem backup -o FILE` with --server (a running
// server, through GET /api/backup) or --data (a stopped server's data
// directory). Either way the copy is consistent, and FILE is replaced only
// once the whole copy is there.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory holding "+dataFileName+" of a stopped server")
	out := fs.String("o", "", "the backup file to write (required; replaced only once the copy is complete)")
	wait := fs.Duration("lock-timeout", storage.DefaultLockTimeout, "with --data: how long to wait for a running server to release the data file")
	server, key, timeout := remoteFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tandem backup --server URL [--key KEY] -o FILE")
		fmt.Fprintln(stderr, "       tandem backup --data DIR -o FILE")
		fmt.Fprintln(stderr, "\nWrite a consistent copy of the whole data file. With --server the server keeps\nserving (the key needs admin on system:backup); with --data it must be stopped.\nRestore by putting FILE in place of "+dataFileName+" in a stopped server's data directory.\n\nFlags:")
		fs.PrintDefaults()
	}
	if stop, err := parseFlags(fs, args); stop {
		return err
	}
	if err := oneSource(fs, *data, *server, "--server URL (a running server) or --data DIR (a stopped one) is required"); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *out == "":
		return usageError(fs, "-o FILE is required")
	}
	var n int64
	var err error
	if *server != "" {
		rm, rerr := newRemote(*server, *key, *timeout)
		if rerr != nil {
			return usageError(fs, rerr.Error())
		}
		err = writeFileAtomic(*out, func(w io.Writer) error {
			n, err = rm.backup(ctx, w)
			return err
		})
	} else {
		db, oerr := openStopped("backup", *data, *wait, stderr)
		if oerr != nil {
			return oerr
		}
		err = writeFileAtomic(*out, func(w io.Writer) error {
			n, err = db.Backup(func(int64) io.Writer { return w })
			return err
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stderr, "backup: %d bytes written to %s\n", n, *out)
	return nil
}

// backup copies the server's data file to w, checking that it got every
// byte the server announced.
func (r *remote) backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := r.do(ctx, http.MethodGet, "/api/backup", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.ContentLength < 0 {
		return 0, errors.New("the server sent no Content-Length; is it a tandem server?")
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes (the copy failed midway; see the server's log)", n, resp.ContentLength)
	}
	return n, err
}
