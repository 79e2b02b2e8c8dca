# Shared set-up for scripts/test and scripts/run: services up, Python 3.12 venv with the package.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
    echo "PostgreSQL did not start" >&2; return 1
  fi
}

ensure_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 1; done
    echo "Redis did not start" >&2; return 1
  fi
}

python312() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  local found
  found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python 2>/dev/null | sort -V | tail -n1)
  if [ -n "$found" ]; then echo "$found"; return; fi
  command -v python3.12 || { echo "Python 3.12 not found (pyenv install 3.12 or set PYTHON)" >&2; return 1; }
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    "$(python312)" -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q -e "$ROOT[test]"
}

# The catalogs' freshness test extracts the messages afresh with GNU gettext (xgettext, msgmerge;
# the test skips without them).
ensure_gettext() {
  command -v xgettext >/dev/null && command -v msgmerge >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing gettext (Debian package) for the catalogs' freshness test"
    { apt-get update -qq && apt-get install -y -qq gettext >/dev/null; } || echo "gettext could not be installed: its test will skip"
  fi
}

# The report page is tested in a real browser: Debian's chromium (the test skips without it).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium (Debian package) for the report page test"
    { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "chromium could not be installed: its test will skip"
  fi
}
