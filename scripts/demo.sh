#!/usr/bin/env bash
# The quick start's first command: makes sure this machine has Deno 2.9.6 and
# redis-server (scripts/setup.sh: installs them when it may, as root or with
# password-less sudo, else prints the exact commands), then runs the demo
# (`deno task demo "$@"`, see scripts/demo.ts). Exits with the demo's exit code.
set -uo pipefail

cd "$(dirname "$(readlink -f "$0")")/.." || exit 1

scripts/setup.sh || exit $?

# shellcheck source=scripts/_deno_path.sh
source scripts/_deno_path.sh

exec deno task demo "$@"
