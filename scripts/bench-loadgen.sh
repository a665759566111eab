#!/usr/bin/env bash
# deckhand loadgen against wrk: the same loopback target, the same number of connections,
# the same duration, alternating ROUNDS times (wrk, loadgen, wrk, loadgen, ...) so both see
# the same machine. Prints every round, each tool's best and median, and the ratios.
#
#   scripts/bench-loadgen.sh [CONNECTIONS] [SECONDS] [ROUNDS] [WRK_THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-32}
SECS=${2:-10}
ROUNDS=${3:-3}
THREADS=${4:-2}

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet --bin deckhand --example bench-target

out=$(mktemp)
target/release/examples/bench-target >"$out" &
target_pid=$!
trap 'kill $target_pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
url=$(head -1 "$out")
echo "target $url, $CONNS connections, ${SECS}s per run, $ROUNDS rounds, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# Warm the target up so neither tool pays for the first connections.
wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null

wrk_all=()
dh_all=()
printf '%-6s %-18s %12s %10s %8s\n' round tool "requests/s" p99 errors
for round in $(seq "$ROUNDS"); do
  wrk_out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$url")
  wrk_rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$wrk_out")
  wrk_p99=$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")
  wrk_err=$(awk '/Socket errors|Non-2xx/ {e = e $0 " "} END {print (e == "" ? 0 : e)}' <<<"$wrk_out")
  printf '%-6s %-18s %12s %10s %8s\n' "$round" "wrk -t$THREADS" "$wrk_rps" "$wrk_p99" "$wrk_err"
  wrk_all+=("$wrk_rps")

  dh_out=$(target/release/deckhand loadgen --url "$url" --concurrency "$CONNS" --duration "${SECS}s")
  dh_rps=$(awk '/^requests/ {sub("/s", "", $6); print $6}' <<<"$dh_out")
  dh_p99=$(awk '/^latency/ {print $7}' <<<"$dh_out")
  dh_err=$(awk '/^errors/ {print $2}' <<<"$dh_out")
  printf '%-6s %-18s %12s %10s %8s\n' "$round" "deckhand loadgen" "$dh_rps" "$dh_p99" "$dh_err"
  dh_all+=("$dh_rps")
done

stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {printf "%s %s", v[NR], v[int((NR + 1) / 2)]}'; }
read -r wrk_best wrk_median <<<"$(stats "${wrk_all[@]}")"
read -r dh_best dh_median <<<"$(stats "${dh_all[@]}")"
echo "best:   wrk $wrk_best, deckhand $dh_best"
echo "median: wrk $wrk_median, deckhand $dh_median"
awk -v a="$dh_best" -v b="$wrk_best" -v c="$dh_median" -v d="$wrk_median" \
  'BEGIN { printf "ratio deckhand/wrk: best %.2f, median %.2f\n", a / b, c / d }'
