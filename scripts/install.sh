#!/usr/bin/env bash
# Installs the compiled binary, the systemd unit and an example configuration.
#   deno task compile && sudo scripts/install.sh [--binary dist/redis-stream-sync] [--prefix /usr/local]
#                                                 [--no-systemd] [--destdir DIR]
# --destdir stages everything below DIR (for packaging; no systemctl, no root needed).
# Existing configuration files are never overwritten.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

binary=dist/redis-stream-sync
prefix=/usr/local
systemd=1
destdir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --no-systemd) systemd=0; shift ;;
    --destdir) destdir="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument \"$1\" (expected --binary FILE, --prefix DIR, --no-systemd or --destdir DIR)" >&2; exit 2 ;;
  esac
done

[[ -x "$binary" ]] || { echo "install.sh: \"$binary\" not found: run \"deno task compile\" first" >&2; exit 1; }
[[ -n "$destdir" || "$(id -u)" -eq 0 ]] || { echo "install.sh: run as root (sudo scripts/install.sh)" >&2; exit 1; }

install -D -m 0755 "$binary" "${destdir}${prefix}/bin/redis-stream-sync"
echo "Installed ${prefix}/bin/redis-stream-sync ($("${destdir}${prefix}/bin/redis-stream-sync" --version))"

etc="${destdir}/etc/redis-stream-sync"
install -d -m 0755 "$etc"
if [[ ! -e "$etc/env.conf" ]]; then
  # 0600: it may hold the passwords. The unit loads it as a credential (systemd reads it as
  # root and hands the service, a dynamic user, its own copy).
  install -m 0600 env.conf.example "$etc/env.conf"
  echo "Installed /etc/redis-stream-sync/env.conf: edit the hosts before starting"
else
  echo "Kept the existing /etc/redis-stream-sync/env.conf"
fi
if [[ ! -e "$etc/environment" ]]; then
  install -m 0600 /dev/null "$etc/environment"
  printf '# SOURCE_REDIS_PASSWORD=...\n# TARGET_REDIS_PASSWORD=...\n' > "$etc/environment"
fi

if [[ "$systemd" -eq 1 ]]; then
  unit=scripts/redis-stream-sync.service
  install -d -m 0755 "${destdir}/etc/systemd/system"
  sed "s#/usr/local/bin/redis-stream-sync#${prefix}/bin/redis-stream-sync#" "$unit" \
    > "${destdir}/etc/systemd/system/redis-stream-sync.service"
  chmod 0644 "${destdir}/etc/systemd/system/redis-stream-sync.service"
  if [[ -z "$destdir" ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
  fi
  echo "Installed /etc/systemd/system/redis-stream-sync.service"
  echo "Next: redis-stream-sync check --config /etc/redis-stream-sync/env.conf"
  echo "      systemctl enable --now redis-stream-sync && journalctl -u redis-stream-sync -f"
fi
