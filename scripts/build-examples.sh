#!/usr/bin/env bash
# Builds the editor examples (clients/js/examples: a CodeMirror 6 page and
# a Monaco page, each bundled with esbuild with the Tandem client and its
# binding) into clients/js/examples/dist/, installing the npm packages
# first if they are missing. With --serve [HOST:]PORT it also serves them
# (default 127.0.0.1:8090) until interrupted:
#
#   make run                           # the server, on 127.0.0.1:8080
#   scripts/build-examples.sh --serve  # then open http://127.0.0.1:8090/
#
# Other options go to clients/js/examples/build.mjs (--outdir DIR,
# --no-minify).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "build-examples: Node.js is not installed (need Node 20)" >&2; exit 1; }
if [ ! -d clients/js/node_modules/esbuild ] || [ ! -d clients/js/node_modules/monaco-editor ]; then
	(cd clients/js && npm ci --no-audit --no-fund)
fi
args=()
while [ $# -gt 0 ]; do
	if [ "$1" = "--serve" ]; then
		if [ $# -gt 1 ] && [[ "$2" != --* ]]; then
			args+=(--serve "$2")
			shift
		else
			args+=(--serve 127.0.0.1:8090)
		fi
	else
		args+=("$1")
	fi
	shift
done
exec node clients/js/examples/build.mjs "${args[@]}"
