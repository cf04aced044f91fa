#!/usr/bin/env bash
# Debian's Chromium for the browser-preview test of `edgekit camera --serve`. Idempotent: does nothing
# when /usr/bin/chromium is already there. Only Debian's package: a browser downloaded by a test tool
# cannot be fetched on these machines.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install Chromium by hand for the browser test" >&2
  exit 1
fi
# Run as root (CI and the developers' machines are); sudo only when it is there and needed.
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
test -x /usr/bin/chromium
echo "install-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
