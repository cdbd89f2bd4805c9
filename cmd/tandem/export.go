package main

import (
	"context"
	"io"
)

// runExport and runImport are filled in by the storage milestone.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notYet("export")(ctx, args, stdout, stderr)
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notYet("import")(ctx, args, stdout, stderr)
}
