//! The outbox's statements on tables the planner knows nothing about. A PostgreSQL database
//! whose tables grew from empty faster than autovacuum's analyze came by (a new deployment
//! hit by a burst, or autovacuum off) has no statistics for them; the bookkeeping statement
//! (a post's "delivered" mark) then scanned every pending row for each batch, and after a
//! burst the posts fell minutes behind the acknowledgements (issue 14, round seventeen of
//! docs/performance-log.md). A slow batch now makes the store refresh the statistics
//! (`ANALYZE deliveries, requests`, at most once a minute).
//!
//! The cause was not the missing statistics alone: PostgreSQL plans a prepared statement
//! for its parameters five times, then keeps a generic plan made for the tables as they were,
//! and only `ANALYZE` (or a schema change) makes it plan again. A plan made while the outbox
//! held a few rows reads every row of a large one.
//!
//! On SQLite and PostgreSQL: a mark on a table of 300,000 pending rows lands; on PostgreSQL
//! both tables have statistics afterwards. And the store does not wait for a slow statement
//! to refresh them: on PostgreSQL the 1,000th request it stores does (src/store/statistics.rs;
//! a generic plan made on the empty tables made every bookkeeping batch 4 times slower until
//! then, round eighteen).

mod support;

use std::time::Duration;

use deckhand::{
    domain::{RequestId, now_ms},
    store::Store,
};
use sqlx::Row;
use support::{Backend, TestDb, backends, release_invocation, spawn_app};

/// Pending rows of other requests, none of them claimed.
const BACKLOG: i64 = 300_000;

async fn fill_backlog(store: &Store) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BACKLOG}) \
         INSERT INTO deliveries (request_id, seq, surface, kind, state, attempts, created_at, next_at) \
         SELECT 'r-backlog' || i, 1, 'slack', 'state', 'pending', 0, i, i FROM n"
    )))
    .execute(store.pool())
    .await
    .expect("backlog");
}

/// When PostgreSQL last analyzed `table`, as text; `None` before it ever did.
async fn last_analyze(store: &Store, table: &str) -> Option<String> {
    sqlx::query("SELECT CAST(last_analyze AS TEXT) AS at FROM pg_stat_user_tables WHERE relname = $1")
        .bind(table)
        .fetch_one(store.pool())
        .await
        .expect("pg_stat_user_tables")
        .try_get("at")
        .expect("last_analyze")
}

/// Stores a pending row of a new request held by `w-1` and marks it posted through the
/// store's bookkeeping batch; the row as it is afterwards.
async fn post_one(store: &Store) -> deckhand::store::DeliveryRecord {
    let id = RequestId::generate();
    sqlx::query(
        "INSERT INTO deliveries (request_id, seq, surface, kind, state, attempts, created_at, next_at, lease_owner, lease_until) \
         VALUES ($1, 1, 'slack', 'state', 'pending', 1, 0, 0, 'w-1', $2)",
    )
    .bind(id.as_str())
    .bind(now_ms() + 60_000)
    .execute(store.pool())
    .await
    .expect("held row");
    store
        .delivered(&id, 1, 1, "w-1", Some("1700000000.000100"), now_ms(), None)
        .await
        .expect("mark");
    let mut rows = store.deliveries(&id).await.expect("deliveries");
    assert_eq!(rows.len(), 1);
    rows.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_mark_on_a_table_without_statistics_refreshes_them() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        // One connection, so the marks below all run on the one that prepared the statement.
        let store = db.store(1).await;
        // While the tables are small, PostgreSQL settles on a generic plan for the batch
        // statement (after five executions), made for tables of a few rows.
        for _ in 0..7 {
            assert_eq!(post_one(&store).await.state, "delivered");
        }
        fill_backlog(&store).await;
        if backend == Backend::Postgres {
            assert_eq!(
                last_analyze(&store, "deliveries").await,
                None,
                "no statistics to begin with"
            );
        }

        // That plan reads the whole backlog for one mark (about 200 ms here), which still lands.
        let row = post_one(&store).await;
        assert_eq!(row.state, "delivered", "the mark landed");
        assert_eq!(row.platform_id.as_deref(), Some("1700000000.000100"));
        if backend == Backend::Sqlite {
            continue;
        }
        // The refresh runs beside the next batches: wait for it, with a deadline.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while last_analyze(&store, "deliveries").await.is_none() || last_analyze(&store, "requests").await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the slow mark did not refresh the statistics of deliveries and requests"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thousandth_stored_request_refreshes_the_statistics() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        if backend == Backend::Postgres {
            assert_eq!(
                last_analyze(&app.store, "requests").await,
                None,
                "no statistics to begin with"
            );
        }
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..1_000 {
            let app = app.clone();
            let inv = release_invocation(&app, "alice", format!("trigger-{i}"));
            calls.spawn(async move { app.submit(inv).await.map(|s| s.duplicate) });
            if calls.len() >= 32 {
                let done = calls.join_next().await.expect("a call").expect("task");
                assert!(!done.expect("stored"), "a new request");
            }
        }
        while let Some(done) = calls.join_next().await {
            assert!(!done.expect("task").expect("stored"), "a new request");
        }
        let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM requests")
            .fetch_one(app.store.pool())
            .await
            .expect("count")
            .try_get("n")
            .expect("n");
        assert_eq!(stored, 1_000);
        if backend == Backend::Sqlite {
            continue;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while last_analyze(&app.store, "deliveries").await.is_none()
            || last_analyze(&app.store, "requests").await.is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "1,000 stored requests did not refresh the statistics of deliveries and requests"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
