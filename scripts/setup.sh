#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack: Go modules,
# the JavaScript checks' npm packages (TypeScript, esbuild) and Debian's
# Chromium for the browser tests. Idempotent: quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "setup: Go is not installed (need Go 1.26)" >&2; exit 1; }
command -v node >/dev/null || { echo "setup: Node.js is not installed (need Node 20)" >&2; exit 1; }
go mod download
# The JavaScript checks' packages, pinned in clients/js/package-lock.json:
# TypeScript (the type checks) and esbuild (the package test bundles a page).
if [ ! -x clients/js/node_modules/.bin/tsc ] || [ ! -x clients/js/node_modules/.bin/esbuild ]; then
	(cd clients/js && npm ci --no-audit --no-fund)
fi
scripts/install-chromium.sh
