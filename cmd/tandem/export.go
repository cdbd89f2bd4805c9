package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/storage"
)

// dataFileName is the name of the bbolt file inside a data directory.
const dataFileName = "tandem.db"

// runExport implements `tandem export --data DIR --doc ID [-o FILE]`: it
// writes one document's whole history as JSON to FILE, or to stdout. It
// works on a stopped server's file; a running server holds the file and
// export fails after the lock timeout. With --server URL --key KEY instead
// of --data it asks a running server through its HTTP API.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory holding "+dataFileName+" (required)")
	id := fs.String("doc", "", "id of the document to export (required)")
	out := fs.String("o", "", "write to this file instead of stdout (replaced only once the export is complete)")
	wait := fs.Duration("lock-timeout", storage.DefaultLockTimeout, "how long to wait for a running server to release the data file")
	server, key, timeout := remoteFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tandem export --data DIR --doc ID [-o FILE] [--lock-timeout D]")
		fmt.Fprintln(stderr, "       tandem export --server URL [--key KEY] --doc ID [-o FILE]")
		fmt.Fprintln(stderr, "\nWrite one document's whole history (metadata, ops, snapshots, comments) as JSON.\nWith --data the server must be stopped; with --server it must be running.\n\nFlags:")
		fs.PrintDefaults()
	}
	if stop, err := parseFlags(fs, args); stop {
		return err
	}
	if err := oneSource(fs, *data, *server, "--data is required (or --server URL for a running server)"); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *id == "":
		return usageError(fs, "--doc is required")
	}
	if *server != "" {
		rm, err := newRemote(*server, *key, *timeout)
		if err != nil {
			return usageError(fs, err.Error())
		}
		return remoteExport(ctx, rm, *id, *out, stdout)
	}
	db, err := openStopped("export", *data, *wait, stderr)
	if err != nil {
		return err
	}
	defer db.Close()

	if *out == "" {
		if err := db.Export(*id, stdout); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return db.Close()
	}
	if err := writeFileAtomic(*out, func(w io.Writer) error { return db.Export(*id, w) }); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return db.Close()
}

// runImport implements `tandem import --data DIR FILE`: it loads an export
// (FILE, or stdin for "-") into the data directory, creating it if need be.
// A malformed or inconsistent export, or a document id already there, fails
// with nothing written. With --server URL --key KEY instead of --data it
// posts the export to a running server's HTTP API.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory holding "+dataFileName+", created if missing (required)")
	wait := fs.Duration("lock-timeout", storage.DefaultLockTimeout, "how long to wait for a running server to release the data file")
	server, key, timeout := remoteFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tandem import --data DIR [--lock-timeout D] FILE")
		fmt.Fprintln(stderr, "       tandem import --server URL [--key KEY] FILE")
		fmt.Fprintln(stderr, "\nLoad a document exported with 'tandem export' (FILE, or - for stdin).\nThe document must not exist yet. With --data the server must be stopped;\nwith --server it must be running.\n\nFlags:")
		fs.PrintDefaults()
	}
	if stop, err := parseFlags(fs, args); stop {
		return err
	}
	if err := oneSource(fs, *data, *server, "--data is required (or --server URL for a running server)"); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError(fs, "want exactly one FILE to import")
	}
	var rm *remote
	if *server != "" {
		var err error
		if rm, err = newRemote(*server, *key, *timeout); err != nil {
			return usageError(fs, err.Error())
		}
	}
	var in io.Reader
	if name := fs.Arg(0); name == "-" {
		in = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		in = f
	}
	if rm != nil {
		info, err := rm.importDoc(ctx, in)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "imported document %q at version %d\n", info.ID, info.Version)
		return err
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	db, err := storage.Open(filepath.Join(*data, dataFileName), storage.Config{Logger: cliLogger(stderr), LockTimeout: *wait})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer db.Close()
	info, err := db.Import(in)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "imported document %q at version %d\n", info.ID, info.Version)
	return err
}

// parseFlags parses args. It reports stop when the subcommand must not go
// on: after -h (the usage is printed; err is nil, so tandem exits 0) or on
// a bad flag (the flag package printed the problem and the usage; err is
// errUsage).
func parseFlags(fs *flag.FlagSet, args []string) (stop bool, err error) {
	err = fs.Parse(args)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, flag.ErrHelp):
		return true, nil
	default:
		return true, errUsage
	}
}

// usageError prints msg and the usage and returns errUsage.
func usageError(fs *flag.FlagSet, msg string) error {
	fmt.Fprintf(fs.Output(), "tandem %s: %s\n\n", fs.Name(), msg)
	fs.Usage()
	return errUsage
}

// cliLogger logs warnings and errors to stderr, as a command-line tool
// should.
func cliLogger(stderr io.Writer) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}

// oneSource checks that exactly one of --data and --server was given;
// missing is the complaint when neither was.
func oneSource(fs *flag.FlagSet, data, server, missing string) error {
	switch {
	case data != "" && server != "":
		return usageError(fs, "give --data or --server, not both")
	case data == "" && server == "":
		return usageError(fs, missing)
	}
	return nil
}

// openStopped opens the data file in dir, which a stopped server left, for
// the command verb; it fails when there is none rather than create one.
func openStopped(verb, dir string, wait time.Duration, stderr io.Writer) (*storage.DB, error) {
	path := filepath.Join(dir, dataFileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: no data file: %w", verb, err)
	}
	db, err := storage.Open(path, storage.Config{Logger: cliLogger(stderr), LockTimeout: wait})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", verb, err)
	}
	return db, nil
}

// writeFileAtomic writes path through write into a temporary file beside
// it, syncs it and renames it over path, so that a failed export leaves no
// partial file.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
