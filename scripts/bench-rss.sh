#!/usr/bin/env bash
# Issue 14's memory figures: the release `deckhand serve` as a child process, its RSS idle,
# after COMMANDS (default 100,000) signed slash commands that each need an approval (durable
# write, then the root message and prompt posted to a local Slack API sink), and idle again;
# on SQLite, then PostgreSQL (127.0.0.1:5432, or DECKHAND_TEST_PG_URL).
# Usage: scripts/bench-rss.sh [COMMANDS] [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin deckhand --example bench-rss
target="${CARGO_TARGET_DIR:-target}"
RSS_BENCH_BIN="$target/release/deckhand" exec "$target/release/examples/bench-rss" "${1:-100000}" ${2:+"$2"}
