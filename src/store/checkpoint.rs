//! SQLite's WAL checkpoints, moved off the commit path.
//!
//! By default the connection whose commit takes the write-ahead log past 1,000 pages copies
//! the log back into the database file and syncs it, inside that commit. Here that
//! connection is the writer every acknowledgement waits on, so every few thousand requests
//! one group commit (and every ack queued behind it) waited for a checkpoint's fsync: the
//! tail of the ack latency (issue 14). Instead the writer checkpoints itself only as a
//! backstop, at [`BACKSTOP_PAGES`], and a task on a reader connection runs a PASSIVE
//! checkpoint every [`EVERY`]: it copies what no reader still needs, never takes the write
//! lock and never makes a writer wait. Durability is unchanged: a committed transaction is in
//! the log either way, and the log is what a restart replays.
//!
//! Why every 50 ms (issue 14, round ten; one-off runs of the SQLite part of
//! `scripts/bench-ack.sh`, 8 s, with the interval briefly read from the environment): a
//! checkpoint that takes a few milliseconds to sync rarely ends with the whole log copied
//! while acks keep arriving, so at 500 ms the log was seldom restarted, grew to the writer's
//! backstop, and the writer checkpointed in its commit after all (a `perf trace` of the run
//! showed the writer's thread syncing the log and the database every 2-3 s). The 1,000/s p99
//! was 21.0-29.6 ms every 500 ms (seven runs), 6.9 ms every 100 ms and 4.8 ms every 50 ms
//! (one run each); longer intervals (2 s, 5 s; round four) were worse still. A checkpoint
//! with nothing to copy writes and syncs nothing (seen with `strace`), so an idle store pays
//! one no-op statement a tick.

use std::time::Duration;

use sqlx::AnyPool;

/// How often the background checkpoint runs.
pub(super) const EVERY: Duration = Duration::from_millis(50);
/// The log size (pages) at which the committing writer checkpoints after all, should the
/// background task fall behind: about 40 MB of log.
pub(super) const BACKSTOP_PAGES: u32 = 10_000;

/// Runs until `readers` is closed.
pub(super) fn spawn(readers: AnyPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if readers.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&readers).await {
                if readers.is_closed() {
                    return;
                }
                tracing::debug!(error = %e, "background WAL checkpoint failed; the writer's backstop still applies");
            }
        }
    });
}
