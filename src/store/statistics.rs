//! PostgreSQL's planner statistics of the outbox (`deliveries`) and `requests` tables, kept
//! in step with their growth.
//!
//! The hot statements are prepared once per connection, and after five executions
//! PostgreSQL keeps a generic plan for each, made with what it then knew of the tables. On a
//! new database that is nearly nothing, and the plan stays until `ANALYZE` invalidates it:
//! the bookkeeping statement then hashes every pending row of a table that keeps growing
//! for each batch of a few (issue 14; docs/performance-log.md, rounds seventeen and
//! eighteen). Autovacuum's analyze comes at most once a minute, and not at all where it is
//! off. So the store refreshes the statistics itself:
//! - when the tables have grown: after 1,000 requests inserted by this store, then each
//!   time that count doubles (a few refreshes in all, while the tables are small and each
//!   costs little);
//! - when a statement whose plan depends on them was slow (the head query in outbox.rs, the
//!   bookkeeping batch in bookkeeping.rs), at most once a minute.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::{Backend, Store};

/// Requests inserted before the first refresh for growth.
const FIRST_REFRESH: u64 = 1_000;
/// The least time between two refreshes for slowness.
const SLOW_REFRESH_EVERY_MS: i64 = 60_000;

/// One store's (and its clones') record of refreshes.
#[derive(Debug)]
pub(super) struct Statistics {
    /// When a statement's slowness last refreshed them (ms).
    slow_at: AtomicI64,
    /// Requests inserted through this store since it started.
    inserted: AtomicU64,
    /// The count of `inserted` at which the next refresh for growth is due.
    due_at: AtomicU64,
}

impl Default for Statistics {
    fn default() -> Self {
        Self {
            slow_at: AtomicI64::new(0),
            inserted: AtomicU64::new(0),
            due_at: AtomicU64::new(FIRST_REFRESH),
        }
    }
}

impl Statistics {
    /// Counts `n` inserted requests; true when they make a refresh due (once per doubling).
    fn grew(&self, n: u64) -> bool {
        let total = self.inserted.fetch_add(n, Ordering::Relaxed) + n;
        let due = self.due_at.load(Ordering::Relaxed);
        total >= due
            && self
                .due_at
                .compare_exchange(due, total.saturating_mul(2), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// True when a slow statement may refresh now (at most once a minute).
    fn slow(&self, now: i64) -> bool {
        let last = self.slow_at.load(Ordering::Relaxed);
        now - last >= SLOW_REFRESH_EVERY_MS
            && self
                .slow_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }
}

impl Store {
    /// `n` requests were inserted; refreshes the statistics when that makes the tables twice
    /// as big as at the last refresh for growth.
    pub(super) fn inserted(&self, n: usize) {
        if self.backend == Backend::Postgres && self.statistics.grew(n as u64) {
            self.analyze("the outbox and requests tables grew");
        }
    }

    /// A statement whose plan depends on the statistics was slow: refreshes them, at most
    /// once a minute.
    pub(super) fn refresh_statistics(&self) {
        if self.backend == Backend::Postgres && self.statistics.slow(crate::domain::now_ms()) {
            self.analyze("an outbox statement was slow");
        }
    }

    /// `ANALYZE` beside the next statements, not before them.
    fn analyze(&self, why: &'static str) {
        let pool = self.pool().clone();
        tokio::spawn(async move {
            match sqlx::query("ANALYZE deliveries, requests").execute(&pool).await {
                Ok(_) => tracing::info!(reason = why, "refreshed the planner's statistics"),
                Err(e) => tracing::warn!(error = %e, "could not ANALYZE the deliveries and requests tables"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_refreshes_at_a_thousand_then_at_each_doubling() {
        let s = Statistics::default();
        let mut due = Vec::new();
        for i in 1..=20_000u64 {
            if s.grew(1) {
                due.push(i);
            }
        }
        assert_eq!(due, vec![1_000, 2_000, 4_000, 8_000, 16_000]);
        // A batch that jumps past the mark counts once, and the next mark doubles from it.
        let s = Statistics::default();
        assert!(s.grew(1_500));
        assert!(!s.grew(1_400));
        assert!(s.grew(100));
    }

    #[test]
    fn slowness_refreshes_at_most_once_a_minute() {
        let s = Statistics::default();
        assert!(s.slow(120_000));
        assert!(!s.slow(150_000));
        assert!(s.slow(180_000));
    }
}
