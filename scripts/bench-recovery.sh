#!/usr/bin/env bash
# Recovery after kill -9 and approval-to-start latency across replicas, with real replica
# processes on PostgreSQL (127.0.0.1:5432 with trust auth, or DECKHAND_BENCH_PG_ADMIN_URL;
# a fresh database per measurement, dropped afterwards) and the shipped worker.lease and
# worker.poll_interval. Prints every run, then the median, min and max of the recoveries and
# the median, p90, min and max of the approval latencies; exits non-zero if a takeover or a
# start does not happen within its deadline.
# Usage: scripts/bench-recovery.sh [RUNS] [SAMPLES]   (defaults 10 and 50)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example bench-recovery
exec "${CARGO_TARGET_DIR:-target}/release/examples/bench-recovery" "${1:-10}" "${2:-50}"
