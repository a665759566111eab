#!/usr/bin/env bash
# Signed slash-command acknowledgements per second and latency at a fixed rate, with the
# durable write (SQLite, WAL). Usage: scripts/bench-slack.sh [RATE] [SECONDS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
export SLACK_BENCH_RATE="${1:-500}"
export SLACK_BENCH_SECS="${2:-10}"
export SLACK_BENCH_CONCURRENCY="${3:-16}"
exec cargo bench --bench slack
