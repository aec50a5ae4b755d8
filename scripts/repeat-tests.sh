#!/usr/bin/env bash
# Run `make test` several times in a row, optionally while other processes keep the CPUs busy, and stop
# at the first failure. This is how the suite is shown not to depend on the machine's speed:
#
#   scripts/repeat-tests.sh --runs 5              # idle machine
#   scripts/repeat-tests.sh --runs 5 --load 2     # two busy-looping processes, one per core on 2 cores
#
# Each run's log goes to build/repeat/run-<n>.log; the last line printed is one JSON object.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=5 load=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--load N]" >&2; exit 2 ;;
  esac
done
mkdir -p build/repeat
pids=()
stop_load() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; }
trap stop_load EXIT
for _ in $(seq 1 "$load"); do
  # Pure CPU at normal priority: the tests compete with it for every core.
  python3 -c 'while True: pass' & pids+=($!)
done
passed=0 started=$(date +%s)
for n in $(seq 1 "$runs"); do
  t0=$(date +%s)
  if make test > "build/repeat/run-$n.log" 2>&1; then
    passed=$((passed + 1)); echo "run $n: passed in $(( $(date +%s) - t0 )) s"
  else
    echo "run $n: FAILED after $(( $(date +%s) - t0 )) s (build/repeat/run-$n.log)"; tail -n 30 "build/repeat/run-$n.log"
    break
  fi
done
printf '{"runs": %d, "passed": %d, "load_processes": %d, "cores": %d, "seconds": %d}\n' \
  "$runs" "$passed" "$load" "$(nproc)" "$(( $(date +%s) - started ))"
[ "$passed" -eq "$runs" ]
