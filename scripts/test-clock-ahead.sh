#!/usr/bin/env bash
# Runs the tests that start no Redis server with the process clock moved years ahead (libfaketime), so a test that
# reads today's date, or material that expires with the calendar, fails now rather than on the day it would.
# The tests that start Redis cannot run here: redis-server's allocator crashes under libfaketime.
#
#   scripts/test-clock-ahead.sh [faketime offset, default +3y]     (after `npm run build`)
#
# The offset is faketime's -f form: `+3y`, `+1200d`, or an absolute `@2031-06-30 12:00:00`. Only the wall clock
# moves; the monotonic clock behind timers stays real, and the faked clock keeps ticking.
set -euo pipefail
cd "$(dirname "$0")/.."

offset=${1:-+3y}
bash scripts/ensure-test-deps.sh faketime

mapfile -t files < <(node scripts/server-less-tests.mjs)
if ((${#files[@]} == 0)); then
  echo "test-clock-ahead: no server-less test files selected" >&2
  exit 1
fi

export FAKETIME_DONT_FAKE_MONOTONIC=1
in_the_future() { faketime -f "$offset" "$@"; }

# The check is only worth something if node really sees the moved clock: at least two years ahead of the real one
# for a relative offset (+3y is 1095 days), or the requested date for an absolute one.
real_ms=$(node -p 'Date.now()')
faked_ms=$(in_the_future node -p 'Date.now()')
faked_iso=$(in_the_future node -p 'new Date().toISOString()')
if [[ $offset == @* ]]; then
  wanted_ms=$(node -p "Date.parse(process.argv[1].slice(1).replace(' ', 'T') + 'Z')" "$offset")
  moved=$(node -p "Math.abs($faked_ms - $wanted_ms) < 86_400_000")
else
  moved=$(node -p "$faked_ms - $real_ms > 2 * 365 * 86_400_000")
fi
if [[ $moved != true ]]; then
  echo "test-clock-ahead: node does not see the moved clock (faketime -f '$offset': Date.now() is $faked_iso)" >&2
  exit 1
fi

echo "test-clock-ahead: ${#files[@]} server-less test files with the clock at $faked_iso (faketime -f '$offset')" >&2
in_the_future node --test --test-reporter=spec "${files[@]}"
