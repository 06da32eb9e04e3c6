# Sourced by scripts/pombolt and scripts/test: make .venv with Pom-Bolt installed (only when needed).
# Needs only Python >= 3.11 and git; the package registries provide the rest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in python3.13 python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then PY="$c"; break; fi
  done
fi
[ -n "$PY" ] || { echo "error: Pom-Bolt needs Python 3.11 or newer on PATH (python3.11, python3.12 ...)" >&2; exit 2; }
VENV="$ROOT/.venv"
EXTRAS="${POMBOLT_EXTRAS:-}"
STAMP="$VENV/.pombolt-installed${EXTRAS:+-$EXTRAS}"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "installing Pom-Bolt into .venv (first run only, about a minute) ..." >&2
  LOG="$VENV/pip-install.log"
  { "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip \
    && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"; } >"$LOG" 2>&1 \
    || { tail -n 40 "$LOG" >&2; echo "error: installing Pom-Bolt failed (full log: $LOG)" >&2; exit 1; }
  echo "$WANT" > "$STAMP"
fi
