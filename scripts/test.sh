#!/usr/bin/env bash
# Runs the whole test suite: scripts/setup.sh, then `deno task test "$@"`.
# Ends with a line "N passed, N failed" (tests, not steps) read from Deno's
# summary, and exits with Deno's exit code (1 if Deno printed no summary).
set -uo pipefail

cd "$(dirname "$(readlink -f "$0")")/.." || exit 1

scripts/setup.sh || exit $?

# shellcheck source=scripts/_deno_path.sh
source scripts/_deno_path.sh

log="$(mktemp "${TMPDIR:-/tmp}/redis-stream-sync-test.XXXXXX")"
trap 'rm -f "$log"' EXIT

deno task test "$@" 2>&1 | tee "$log"
code="${PIPESTATUS[0]}"

# Deno's last line: "ok | 12 passed (3 steps) | 0 failed (2s)" or
# "FAILED | 10 passed | 2 failed | 1 ignored (5s)", possibly in colour.
summary="$(sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)"
if [[ -z "$summary" ]]; then
  echo "test.sh: no test summary found in the output of deno task test (exit code ${code})" >&2
  [[ "$code" -ne 0 ]] || code=1
  exit "$code"
fi

count() { # count WORD: the number before WORD in the summary, 0 if absent
  local match
  match="$(grep -oE "[0-9]+ $1" <<<"$summary" | head -n 1)"
  echo "${match%% *}"
}
passed="$(count passed)"
failed="$(count failed)"
ignored="$(count ignored)"
line="${passed:-0} passed, ${failed:-0} failed"
if [[ "${ignored:-0}" -gt 0 ]]; then
  line="${line}, ${ignored} skipped"
fi
echo
echo "$line"

if [[ "$code" -eq 0 && "${failed:-0}" -gt 0 ]]; then
  code=1
fi
exit "$code"
