#!/usr/bin/env bash
# Issue 14's measurement: the durable Slack ack against a verify-only handler, same run, same
# load generator. Measures, one after the other in one process:
#   1. a verify-only baseline (axum handler in the bench: checks the Slack HMAC, answers 200);
#   2. the floor: the baseline's check plus the two Web API posts a stored command makes
#      (deckhand's own client, to the same sink), awaited before the 200; no parse, no store;
#   3. deckhand's /slack/commands on SQLite (WAL);
#   4. deckhand's /slack/commands on PostgreSQL (a database created for the run on
#      DECKHAND_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres, then dropped).
# Each: CONCURRENCY tasks back to back for SECONDS (acks/s, p50, p99), then RATE commands/s
# open loop for SECONDS (p50, p99, max, from each command's scheduled time), both from the
# bench's own Rust client (each command signed as it is sent), then wrk with CONCURRENCY
# connections for SECONDS (when installed: apt-get install wrk), sending commands signed just
# before the run from a file (wrk's Lua cannot compute HMAC-SHA256); then the ratios.
#
# Every command is signed, has a new trigger_id and needs approval; deckhand's posts go to a
# local Slack API sink, and the bench waits for them before counting them.
#
# Usage: scripts/bench-ack.sh [SECONDS] [CONCURRENCY] [RATE]     (defaults 10 32 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
export SLACK_BENCH_SECS="${1:-10}"
export SLACK_BENCH_CONCURRENCY="${2:-32}"
export SLACK_BENCH_RATE="${3:-1000}"
export SLACK_BENCH_PARTS="${SLACK_BENCH_PARTS:-baseline,floor,sqlite,postgres}"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
exec cargo bench --bench slack
