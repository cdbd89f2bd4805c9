#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack: Go modules,
# the JavaScript checks' npm packages (the TypeScript checker, CodeMirror,
# Monaco and esbuild for the editor bindings' tests) and Debian's
# Chromium for the browser tests. Idempotent: quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "setup: Go is not installed (need Go 1.26)" >&2; exit 1; }
command -v node >/dev/null || { echo "setup: Node.js is not installed (need Node 20)" >&2; exit 1; }
go mod download
# Again when the lockfile is newer than the last install (packages added,
# e.g. the editors the bindings' tests drive and esbuild that bundles them).
if [ ! -d clients/js/node_modules ] || [ clients/js/package-lock.json -nt clients/js/node_modules/.package-lock.json ]; then
	(cd clients/js && npm ci --no-audit --no-fund)
fi
scripts/install-chromium.sh
