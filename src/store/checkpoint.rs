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
//! Why every 500 ms (one-off runs of `scripts/bench-ack.sh`, SQLite part, two per setting,
//! with the interval and the writer's threshold briefly read from the environment): at 2 s
//! and 5 s the 1,000/s p99 was 25-35 ms, each checkpoint having more to copy and sync; at
//! 500 ms it was 10.3-16.8 ms; with no background task and SQLite's own threshold of 1,000
//! pages in the commit it was 9.6-15.2 ms, within the same spread. The interval is not what
//! keeps SQLite's p99 above 10 ms.

use std::time::Duration;

use sqlx::AnyPool;

/// How often the background checkpoint runs.
pub(super) const EVERY: Duration = Duration::from_millis(500);
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
