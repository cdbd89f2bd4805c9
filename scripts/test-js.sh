#!/usr/bin/env bash
# Tests the JavaScript client (web/static/tandem.js) against real servers:
# builds tandem, starts one in development mode and one that verifies JWTs,
# each on a free 127.0.0.1 port with a temporary data directory, runs the
# node tests in clients/js/test/ (the npm package's among them: packed,
# installed in a scratch project, imported and bundled), then type-checks
# tandem.d.ts against clients/js/example.ts with tsc. Exits non-zero on any
# failure.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
export PATH="$PATH:/usr/local/go/bin"

for tool in go node npm; do
	command -v "$tool" >/dev/null || { echo "test-js: $tool is not installed" >&2; exit 1; }
done

# The editor bindings' tests import CodeMirror from clients/js/node_modules.
if [ ! -d clients/js/node_modules/@codemirror/state ]; then
	(cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-js.XXXXXX")
pids=()
cleanup() {
	local rc=$?
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$rc" -ne 0 ]; then
		for log in "$tmp"/*.log; do
			[ -f "$log" ] || continue
			echo "--- last lines of $(basename "$log")" >&2
			tail -n 30 "$log" >&2
		done
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT INT TERM

# TypeScript and esbuild, pinned in the lockfile (scripts/setup.sh installs
# them too).
if [ ! -d clients/js/node_modules/typescript ] || [ ! -d clients/js/node_modules/esbuild ]; then
	(cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "test-js: building the server"
go build -o "$tmp/tandem" ./cmd/tandem

# free_port asks the OS for a port that is free now.
free_port() {
	node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# start NAME [--config FILE] [ENV=VALUE...]: starts a server, waits for
# /healthz, and sets url to its URL. The port may be taken between
# free_port and the listen, so it tries a few times.
start() {
	local name=$1
	shift
	local config=()
	if [ "${1:-}" = "--config" ]; then
		config=(--config "$2")
		shift 2
	fi
	local try port pid
	for try in 1 2 3 4 5; do
		port=$(free_port)
		env -u TANDEM_JWT_SECRET -u TANDEM_ADDR -u TANDEM_DATA -u TANDEM_API_KEYS "$@" \
			"$tmp/tandem" serve --addr "127.0.0.1:$port" --data "$tmp/$name-data" --log-level warn "${config[@]}" \
			>"$tmp/$name.log" 2>&1 &
		pid=$!
		if node -e '
			const [url, pid] = process.argv.slice(1);
			const end = Date.now() + 15000;
			(async () => {
				for (;;) {
					try { process.kill(Number(pid), 0); } catch { process.exit(1); }
					try { if ((await fetch(url)).ok) process.exit(0); } catch {}
					if (Date.now() > end) process.exit(1);
					await new Promise((r) => setTimeout(r, 50));
				}
			})();' "http://127.0.0.1:$port/healthz" "$pid"; then
			pids+=("$pid")
			url="http://127.0.0.1:$port"
			return 0
		fi
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "test-js: $name did not start on port $port (try $try)" >&2
	done
	return 1
}

secret=$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')
url=
start dev
dev_url=$url
start auth TANDEM_JWT_SECRET="$secret"
auth_url=$url
# A server whose hooks post to a backend that the hooks test runs itself
# (clients/js/test/hooks.test.mjs) on a port chosen now.
hooks_port=$(free_port)
hooks_secret=$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')
cat >"$tmp/hooks.json" <<JSON
{
  "hooks": {"url": "http://127.0.0.1:$hooks_port/tandem", "secret": "$hooks_secret", "timeout": "2s",
            "connect": {}, "subscribe": {}, "rpc": {"routes": [{"prefix": "math."}]}},
  "namespaces": {"hooked": {"history_size": 100, "client_publish": true, "hooks": ["subscribe"]}}
}
JSON
start hooks --config "$tmp/hooks.json"
hooks_url=$url
echo "test-js: servers at $dev_url (development mode), $auth_url (JWT) and $hooks_url (hooks)"

status=0
TANDEM_URL=$dev_url TANDEM_AUTH_URL=$auth_url TANDEM_JWT_SECRET=$secret \
	TANDEM_HOOKS_URL=$hooks_url TANDEM_HOOKS_BACKEND_PORT=$hooks_port TANDEM_HOOKS_SECRET=$hooks_secret \
	node --experimental-websocket --test --test-timeout=60000 clients/js/test/ || status=1

echo "test-js: type-checking tandem.d.ts"
(
	cd "$root/clients/js"
	npx --no-install tsc --noEmit -p .
) || status=1

if [ "$status" -ne 0 ]; then
	echo "test-js: FAILED" >&2
	exit 1
fi
echo "test-js: ok"
