package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tandemhq/tandem/storage"
)

// runCompact implements `tandem compact --data DIR [-o FILE]`: a compacted
// copy of a stopped server's data file, written to FILE, or by default put
// in place of the data file (storage.CompactFile).
func runCompact(_ context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory holding "+dataFileName+" of a stopped server (required)")
	out := fs.String("o", "", "write the compacted copy to this new file and leave the data file as it is (default: replace the data file)")
	wait := fs.Duration("lock-timeout", storage.DefaultLockTimeout, "how long to wait for a running server to release the data file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tandem compact --data DIR [-o FILE]")
		fmt.Fprintln(stderr, "\nCompact a stopped server's data file: pack every document's history into blocks\nand copy what is in use into a new file, as small as it gets (the data file never\nshrinks by itself). Without -o the copy replaces "+dataFileName+" once complete;\nit needs free space for the copy either way.\n\nFlags:")
		fs.PrintDefaults()
	}
	if stop, err := parseFlags(fs, args); stop {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *data == "":
		return usageError(fs, "--data DIR is required")
	}
	src := filepath.Join(*data, dataFileName)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("compact: no data file: %w", err)
	}
	dst := src
	if *out != "" {
		dst = *out
	}
	st, err := storage.CompactFile(src, dst, storage.Config{Logger: cliLogger(stderr), LockTimeout: *wait})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	fmt.Fprintf(stderr, "compact: %s: %d bytes, compacted to %d in %s (%d ops packed into blocks)\n", src, st.Before, st.After, dst, st.PackedOps)
	return nil
}
