package client_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExternalModule builds, as a new user's module would, a program
// that uses the Go client and the webhook verifier
// (testdata/external/main.go): it declares a variable of every type the
// client's API hands out (users, members, cursors, messages, presence
// events, errors, limits, document callbacks) and verifies a webhook
// delivery with webhook.Verify. The module is a separate one in a
// temporary directory, whose go.mod replaces github.com/tandemhq/tandem
// with this repository; it builds offline (GOPROXY=off) from the module
// cache this repository's own build filled. A type under internal/ (which
// another module may not import) makes `go vet` fail with "use of
// internal package ... not allowed".
func TestExternalModule(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("no go command to build the external module with: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goDirective(t, filepath.Join(root, "go.mod"))
	dir := t.TempDir()
	gomod := "module example.com/tandemuser\n\n" +
		"go " + goVersion + "\n\n" +
		"require github.com/tandemhq/tandem v0.0.0\n\n" +
		"replace github.com/tandemhq/tandem => " + root + "\n"
	writeFile(t, filepath.Join(dir, "go.mod"), []byte(gomod))
	// The checksums of the modules the client needs are this repository's.
	writeFile(t, filepath.Join(dir, "go.sum"), readFile(t, filepath.Join(root, "go.sum")))
	writeFile(t, filepath.Join(dir, "main.go"), readFile(t, filepath.Join("testdata", "external", "main.go")))

	cmd := exec.Command(goBin, "vet", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GOFLAGS=-mod=mod", // complete go.mod's requirements from the build list
		"GOPROXY=off",      // offline: only what the module cache holds
		"GOWORK=off",
		"GOTOOLCHAIN=local",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet of a module that imports the client: %v\n%s\ngo.mod:\n%s", err, out, gomod)
	}
}

// goDirective returns the version of the go directive of a go.mod.
func goDirective(t *testing.T, path string) string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no go directive", path)
	return ""
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
