# Sourced by scripts/test.sh and scripts/demo.sh after scripts/setup.sh: setup.sh may
# have installed Deno with npm into a directory that is not first on PATH; put it first.
readonly DENO_VERSION="2.9.6"
if [[ "$(deno --version 2>/dev/null | sed -n 1p)" != "deno ${DENO_VERSION} "* ]]; then
  npm_bin="$(npm prefix -g 2>/dev/null)/bin"
  if [[ -x "$npm_bin/deno" ]]; then
    PATH="$npm_bin:$PATH"
    export PATH
  fi
fi
