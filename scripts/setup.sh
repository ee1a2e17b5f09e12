#!/usr/bin/env bash
# Makes sure this machine has everything the tests, the demo and the bench use:
#   Deno 2.9.6 (from npm), and from Debian's packages: redis-server and
#   redis-tools (redis-cli, redis-benchmark), openssl (TLS test certificates),
#   a Compose front end (docker-compose; skipped when `docker compose` already
#   works), systemd-analyze (systemd; checks the unit), python3 with the redis
#   module (python3-redis: the bench's baseline, scripts/seed_baseline.py),
#   promtool (prometheus, without its recommends: checks and unit-tests the
#   alert rules of deploy/prometheus; the server it may start is stopped).
# Installs what is missing (Deno with npm, the rest with apt-get) when it can:
# as root, or with password-less sudo. Otherwise, or with SETUP_NO_INSTALL=1,
# only reports what is missing and how to install it.
# Quiet when everything is there. Exit code: 0 when all is present, 1 if not.
set -euo pipefail

readonly DENO_VERSION="2.9.6"
no_install="${SETUP_NO_INSTALL:-0}"
missing=0
apt_updated=0

say() { printf 'setup: %s\n' "$*" >&2; }

# Whether `$1` (a deno binary) is Deno $DENO_VERSION.
deno_is_wanted() {
  local version
  version="$("$1" --version 2>/dev/null)" || return 1
  [[ "${version%%$'\n'*}" == "deno ${DENO_VERSION} "* ]]
}

# The bin directory of npm's global prefix, where `npm install -g` puts deno.
npm_bin_dir() {
  local prefix
  prefix="$(npm prefix -g 2>/dev/null)" || return 1
  printf '%s/bin\n' "$prefix"
}

# Runs a command as root: directly when root, else with password-less sudo.
as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  else
    sudo -n "$@"
  fi
}

can_be_root() {
  [[ "$(id -u)" -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}

ensure_deno() {
  if command -v deno >/dev/null 2>&1 && deno_is_wanted deno; then
    return 0
  fi
  local found="none"
  if command -v deno >/dev/null 2>&1; then
    found="$(deno --version 2>/dev/null | sed -n 1p)"
  fi
  local command="npm install -g deno@${DENO_VERSION}"
  if [[ "$no_install" == "1" ]]; then
    say "Deno ${DENO_VERSION} is needed (found: ${found:-none}); install it with: ${command}"
    missing=1
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    say "Deno ${DENO_VERSION} is needed (found: ${found:-none}), and npm to install it: install Node.js, then run: ${command}"
    missing=1
    return 0
  fi
  say "installing Deno ${DENO_VERSION} (found: ${found:-none}): ${command}"
  local log
  log="$(mktemp)"
  if ! npm install -g "deno@${DENO_VERSION}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    say "could not install Deno ${DENO_VERSION}; as another user than root, try: sudo ${command}"
    missing=1
    return 0
  fi
  rm -f "$log"
  if command -v deno >/dev/null 2>&1 && deno_is_wanted deno; then
    return 0
  fi
  local bin
  bin="$(npm_bin_dir)" || bin=""
  if [[ -n "$bin" && -x "$bin/deno" ]] && deno_is_wanted "$bin/deno"; then
    say "Deno ${DENO_VERSION} is in ${bin}: put that directory first on PATH (scripts/test.sh and scripts/demo.sh do)"
    return 0
  fi
  say "installed Deno ${DENO_VERSION} with npm, but cannot find it; check: npm prefix -g"
  missing=1
}

# Whether a Compose front end really works (`docker compose` may be a docker CLI
# without its compose plugin: "docker: unknown command: docker compose").
compose_works() {
  { command -v docker-compose >/dev/null 2>&1 && docker-compose version >/dev/null 2>&1; } ||
    { command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }
}

ensure_packages() {
  local packages=()
  # redis-server and redis-cli run the servers of the tests; redis-benchmark is the bench's ceiling.
  command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
  { command -v redis-cli >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1; } ||
    packages+=(redis-tools)
  # openssl makes the TLS tests' certificates.
  command -v openssl >/dev/null 2>&1 || packages+=(openssl)
  # The packaging tests validate compose.yaml with Compose itself.
  compose_works || packages+=(docker-compose)
  # The packaging tests check the systemd unit with systemd-analyze verify.
  command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
  # The bench's baseline and its test run with Debian's python3 and python3-redis.
  /usr/bin/python3 -c 'import redis.asyncio' >/dev/null 2>&1 || packages+=(python3-redis)
  if [[ ${#packages[@]} -eq 0 ]]; then
    return 0
  fi
  local command="apt-get update && apt-get install -y ${packages[*]}"
  if [[ "$no_install" == "1" ]]; then
    say "${packages[*]} needed for the tests; install with: ${command} (as root)"
    missing=1
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "${packages[*]} needed for the tests, and this machine has no apt-get: install Redis 7 (redis-server, redis-cli, redis-benchmark), openssl, docker-compose, systemd-analyze and python3 with the redis module with its package manager"
    missing=1
    return 0
  fi
  if ! can_be_root; then
    say "${packages[*]} needed for the tests; install with: sudo sh -c '${command}'"
    missing=1
    return 0
  fi
  say "installing ${packages[*]}: ${command}"
  local log
  log="$(mktemp)"
  if ! {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"
  } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    say "could not install ${packages[*]}"
    missing=1
    return 0
  fi
  rm -f "$log"
  apt_updated=1
  # Debian's package may start a redis-server service on port 6379: the tests never use it.
  local absent=()
  command -v redis-server >/dev/null 2>&1 || absent+=(redis-server)
  command -v redis-benchmark >/dev/null 2>&1 || absent+=(redis-benchmark)
  command -v openssl >/dev/null 2>&1 || absent+=(openssl)
  compose_works || absent+=("docker-compose (docker-compose version fails)")
  command -v systemd-analyze >/dev/null 2>&1 || absent+=(systemd-analyze)
  /usr/bin/python3 -c 'import redis.asyncio' >/dev/null 2>&1 || absent+=("/usr/bin/python3 with redis")
  if [[ ${#absent[@]} -gt 0 ]]; then
    say "installed ${packages[*]}, but still missing: ${absent[*]}"
    missing=1
  fi
}

# promtool comes with Debian's prometheus package, installed apart from the others: without
# its recommends (node exporter...), and the Prometheus server that the package starts on a
# machine run by systemd is stopped and disabled (the tests only run promtool).
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  local command="apt-get update && apt-get install -y --no-install-recommends prometheus"
  if [[ "$no_install" == "1" ]]; then
    say "promtool needed for the tests of deploy/prometheus; install with: ${command} (as root)"
    missing=1
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "promtool needed for the tests of deploy/prometheus, and this machine has no apt-get: install Prometheus' promtool (2.x) with its package manager"
    missing=1
    return 0
  fi
  if ! can_be_root; then
    say "promtool needed for the tests of deploy/prometheus; install with: sudo sh -c '${command}'"
    missing=1
    return 0
  fi
  say "installing prometheus (for promtool): ${command}"
  local log
  log="$(mktemp)"
  if ! {
    { [[ "$apt_updated" == "1" ]] || as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q; } &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
  } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    say "could not install prometheus"
    missing=1
    return 0
  fi
  rm -f "$log"
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
  if ! command -v promtool >/dev/null 2>&1; then
    say "installed prometheus, but promtool is still missing"
    missing=1
  fi
}

ensure_deno
ensure_packages
ensure_promtool
exit "$missing"
