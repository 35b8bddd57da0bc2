#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run lint, types and tests.
# Usage: ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages: Chromium for browser tests, Redis for cluster tests, nc for the docs' demo
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nc >/dev/null 2>&1 || missing+=(netcat-openbsd)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# the real telnet client, driven in tmux (tests/transport/test_telnet.py)
command -v telnet >/dev/null 2>&1 || missing+=(telnet)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
# the C/C++ IRC servers the benchmarks compare the text interface with (bench smoke test)
command -v ngircd >/dev/null 2>&1 || missing+=(ngircd)
command -v inspircd >/dev/null 2>&1 || missing+=(inspircd)
# a real terminal IRC client, driven in tmux by the IRC interface's end-to-end test
command -v irssi >/dev/null 2>&1 || missing+=(irssi)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Redis on 127.0.0.1:6379 (nothing kept on disk)
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# --- Python environment: exactly the locked versions (requirements/test.txt, with hashes),
# so the same commit checks the same on every machine; scripts/upgrade-deps refreshes it.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --require-hashes -r requirements/test.txt
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .

# --- JavaScript: axe-core for the accessibility tests, Node's ws for the benchmark smoke
for dir in tests/js bench/node; do
  [ -f "$dir/package.json" ] && (cd "$dir" && npm ci --silent --no-audit --no-fund)
done

# --- checks
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
# Tests mostly wait on sockets, servers and Chromium: four workers (pytest-xdist) keep two cores
# busy; PYTEST_WORKERS=0 runs them in one process.
.venv/bin/python -m pytest tests -q -p no:cacheprovider -n "${PYTEST_WORKERS:-4}" "$@"
