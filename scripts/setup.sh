#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "setup: Go is not installed (need Go 1.26)" >&2; exit 1; }
go mod download
