#!/usr/bin/env bash
# The system (Debian) packages the test suite needs, installed when missing: `make test` runs this first, so a
# fresh machine with only Python and make passes `make test` as root. Not root: prints the exact command and fails.
#
#   command that must exist -> Debian package that provides it
#   promtool                -> prometheus        (validates deploy/prometheus/alerts.yaml)
#   chromium, chromedriver  -> chromium, chromium-driver (the status page browser test, Selenium)
#   redis-server            -> redis-server      (the shared-state tests start their own redis)
#   initdb, postgres        -> postgresql        (the Postgres tests start their own cluster)
#   node, npm               -> nodejs, npm       (openai-node and the Vercel AI SDK against /v1/responses, tests/node)
#   python3 -m ensurepip    -> python3-venv      (make venv, on Debian)
# A later issue that needs another package adds one line to NEEDS below.
set -euo pipefail

NEEDS=(
  "promtool:prometheus"
  "chromium:chromium"
  "chromedriver:chromium-driver"
  "redis-server:redis-server"
  "initdb:postgresql"
  "node:nodejs"
  "npm:npm"
)

have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  # PostgreSQL's server binaries live outside PATH on Debian (/usr/lib/postgresql/<version>/bin).
  compgen -G "${SYSTEM_DEPS_PG_BIN:-/usr/lib/postgresql/*/bin}/$1" >/dev/null 2>&1
}

missing=()
for pair in "${NEEDS[@]}"; do
  cmd="${pair%%:*}"; pkg="${pair#*:}"
  if ! have "$cmd"; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done
# `python3 -m venv` (make venv) needs ensurepip, which Debian ships separately; only checked before the venv exists.
if [ ! -x .venv/bin/python ] && command -v "${PYTHON:-python3}" >/dev/null 2>&1 \
    && ! "${PYTHON:-python3}" -c "import ensurepip" >/dev/null 2>&1; then
  missing+=("python3-venv")
fi
[ "${#missing[@]}" -eq 0 ] && exit 0

cmd="apt-get install -y -q --no-install-recommends ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make test needs these Debian packages (or your system's equivalent): ${missing[*]}" >&2
  echo "apt-get was not found; install them with your package manager and re-run make test." >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "make test needs system packages that are not installed: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "    sudo apt-get update && sudo $cmd" >&2
  echo "(or run make test as root, which installs them itself)" >&2
  exit 1
fi
echo "installing system packages for the test suite: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
$cmd
