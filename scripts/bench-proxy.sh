#!/usr/bin/env bash
# Proxy links against the same backend directly and through the API server's service proxy
# alone: requests/s at saturation and latency percentiles.
# Usage: scripts/bench-proxy.sh [SECONDS] [CONNECTIONS] [LATENCY_CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PROXY_BENCH_SECS="${1:-5}"
export PROXY_BENCH_CONNECTIONS="${2:-32}"
export PROXY_BENCH_LATENCY_CONNECTIONS="${3:-4}"
exec cargo bench --bench proxy
