// Command tandem is the Tandem server and its tools in one binary.
//
// Usage:
//
//	tandem serve   [flags]   run the server (with the bundled demo)
//	tandem export  [flags]   write one document's whole history as JSON
//	tandem import  [flags]   load an exported history into a data directory
//	tandem backup  [flags]   write a consistent copy of the whole data file
//	tandem compact [flags]   shrink a stopped server's data file
//	tandem migrate [flags]   move a data file's documents into a cluster
//	tandem token   [flags]   mint a JWT for development and scripts
//	tandem bench   SCENARIO  measure a server over the real protocol
//	tandem version           print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Version is the server's version, reported by `tandem version` and in the
// protocol's `connected.server` field. The build may override it with
// -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

// errUsage marks an error whose message is a usage text; main exits 2.
var errUsage = errors.New("usage")

// command is one subcommand: its name, a one-line summary and its entry point.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand in the order `tandem help` shows them.
func commands() []command {
	return []command{
		{"serve", "run the server with the bundled demo", runServe},
		{"export", "write one document's whole history as JSON", runExport},
		{"import", "load an exported history into a data directory", runImport},
		{"backup", "write a consistent copy of the whole data file", runBackup},
		{"compact", "shrink a stopped server's data file", runCompact},
		{"migrate", "move a data file's documents into a running server or cluster", runMigrate},
		{"token", "mint a JWT for development and scripts", runToken},
		{"bench", "measure a server over the real protocol", runBench},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tandem:", err)
		os.Exit(1)
	}
}

// run dispatches args to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "tandem: unknown command %q\n\n", args[0])
	usage(stderr)
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Tandem: a self-hosted realtime collaboration server.")
	fmt.Fprintln(w, "\nUsage: tandem COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tandem COMMAND -h' for a command's flags.")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintf(stdout, "tandem %s\n", Version)
	return err
}
