#!/usr/bin/env bash
# deckhand loadgen against wrk: the same loopback target, the same number of connections,
# the same duration, one after the other. Prints both rates and the ratio.
#
#   scripts/bench-loadgen.sh [CONNECTIONS] [SECONDS] [WRK_THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-32}
SECS=${2:-10}
THREADS=${3:-2}

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet --bin deckhand --example bench-target

out=$(mktemp)
target/release/examples/bench-target >"$out" &
target_pid=$!
trap 'kill $target_pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
url=$(head -1 "$out")
echo "target $url, $CONNS connections, ${SECS}s each, $(nproc) cores"

# Warm the target up so neither tool pays for the first connections.
wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null

wrk_out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$url")
wrk_rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$wrk_out")
wrk_p99=$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")

dh_out=$(target/release/deckhand loadgen --url "$url" --concurrency "$CONNS" --duration "${SECS}s")
dh_rps=$(awk '/^requests/ {sub("/s", "", $6); print $6}' <<<"$dh_out")
dh_p99=$(awk '/^latency/ {print $7}' <<<"$dh_out")
dh_err=$(awk '/^errors/ {print $2}' <<<"$dh_out")

printf '%-18s %12s %10s\n' tool "requests/s" p99
printf '%-18s %12s %10s\n' "wrk -t$THREADS" "$wrk_rps" "$wrk_p99"
printf '%-18s %12s %10s\n' "deckhand loadgen" "$dh_rps" "$dh_p99"
echo "deckhand errors: $dh_err"
awk -v a="$dh_rps" -v b="$wrk_rps" 'BEGIN { printf "ratio deckhand/wrk: %.2f\n", a / b }'
