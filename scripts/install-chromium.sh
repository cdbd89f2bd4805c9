#!/usr/bin/env bash
# install-chromium.sh installs Debian's chromium for the browser tests
# (web/browser) when /usr/bin/chromium is missing. Idempotent: with chromium
# present it does nothing. Needs root (CI runs as root); scripts/setup.sh
# calls it.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "install-chromium.sh: chromium is missing and this is not root; run: apt-get install -y chromium" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-liberation fonts-noto-color-emoji
/usr/bin/chromium --version
