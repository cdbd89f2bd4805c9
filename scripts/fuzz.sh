#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 5s).
# Usage: scripts/fuzz.sh [FUZZTIME]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-${FUZZTIME:-5s}}
go=${GO:-go}
status=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
		echo "== fuzz $dir $target ($fuzztime)"
		if ! "$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir"; then
			status=1
		fi
	done
done < <(grep -rlE '^func Fuzz' --include='*_test.go' . | sort)
exit $status
