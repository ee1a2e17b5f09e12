#!/usr/bin/env bash
# Builds the container image and pushes it as ${REGISTRY}/redis-stream-sync:${TAG}.
# REGISTRY and TAG come from the environment, else from env.conf (the original
# service's keys), else default to localhost:5000 and latest.
#   scripts/build_image.sh [--config env.conf] [--no-push]
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

config=env.conf
push=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --no-push) push=0; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "build_image.sh: unknown argument \"$1\" (expected --config FILE or --no-push)" >&2; exit 2 ;;
  esac
done

# Reads KEY from the env file: the value after '=', up to a ' #' comment, trimmed, unquoted.
from_file() {
  [[ -f "$config" ]] || return 0
  sed -n "s/^[[:space:]]*\(export[[:space:]]\+\)\?$1[[:space:]]*=[[:space:]]*//p" "$config" | tail -n 1 |
    sed -e 's/[[:space:]]\+#.*$//' -e 's/[[:space:]]*$//' -e "s/^['\"]\(.*\)['\"]$/\1/"
}

registry="${REGISTRY:-$(from_file REGISTRY)}"
tag="${TAG:-$(from_file TAG)}"
image="${registry:-localhost:5000}/redis-stream-sync:${tag:-latest}"

command -v docker >/dev/null || { echo "build_image.sh: docker is not installed (needed: a docker CLI and a running Docker engine)" >&2; exit 1; }
# A docker CLI alone is not enough: the build runs in the engine (which also needs
# internet for the base images and, in the build stage, for Deno's runtime).
docker info >/dev/null 2>&1 || { echo "build_image.sh: docker cannot reach a Docker engine (\"docker info\" fails): start one (systemctl start docker) or build on a machine that has one" >&2; exit 1; }
echo "Building ${image}"
docker build -t "$image" .
if [[ "$push" -eq 1 ]]; then
  echo "Pushing ${image}"
  docker push "$image"
fi
