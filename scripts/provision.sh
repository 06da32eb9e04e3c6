#!/usr/bin/env bash
# Install what the tests need and the machine lacks, when we can (root + apt, npm). Idempotent.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || { echo "provision: cannot install $* (not root or no apt-get)" >&2; return 1; }
  if [ ! -f /tmp/.pombolt-apt-updated ]; then apt-get update -qq >/dev/null 2>&1 && touch /tmp/.pombolt-apt-updated; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}
command -v git >/dev/null 2>&1 || apt_install git
command -v node >/dev/null 2>&1 || apt_install nodejs npm
command -v bwrap >/dev/null 2>&1 || apt_install bubblewrap   # the build sandbox (tasks/_build/sandbox.py); builds are refused without it
command -v prlimit >/dev/null 2>&1 || apt_install util-linux  # limits inside the build sandbox
command -v chromium >/dev/null 2>&1 || apt_install chromium   # browser test of the status page (Playwright drives it)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql  # tests/infra/postgres.py
if command -v npm >/dev/null 2>&1 && [ ! -x "$ROOT/.cache/prism/node_modules/.bin/prism" ]; then
  mkdir -p "$ROOT/.cache/prism"
  timeout 300 npm install --prefix "$ROOT/.cache/prism" --no-audit --no-fund --silent @stoplight/prism-cli@5.14.2 >/dev/null 2>&1 \
    || echo "provision: could not install Prism" >&2
fi
exit 0
