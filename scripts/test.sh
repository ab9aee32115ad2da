#!/usr/bin/env bash
# Runs the test suite on a fresh machine: installs what the tests start (git, PostgreSQL's server
# binaries, moto's SQS emulator in target/moto-venv) when missing, then `cargo test`. Extra
# arguments go to cargo test (e.g. `scripts/test.sh --test github_app`).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing $*: install it (as root: apt-get install -y $*)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

command -v git >/dev/null 2>&1 || apt_install git
# The PostgreSQL tests run initdb and pg_ctl from /usr/lib/postgresql/*/bin (or $PG_BIN).
if [ -z "${PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql
fi
# The SQS tests run moto's server (`pip install moto[server]`) from target/moto-venv.
if [ -z "${REDLINE_MOTO_SERVER:-}" ] && [ ! -x target/moto-venv/bin/moto_server ]; then
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  python3 -m venv target/moto-venv || { apt_install python3-venv && python3 -m venv target/moto-venv; }
  target/moto-venv/bin/pip install --quiet 'moto[server]'
fi

cargo test --workspace --locked "$@"
