//! The outbox's poll finds due rows through an index of the pending rows only
//! (`deliveries_due`, migration 0016). The index it replaced also held every delivered row, so
//! it grew with every message ever posted and each "delivered" mark wrote a new entry into it.
//! On SQLite and PostgreSQL: after 600 rows are claimed and marked delivered through the
//! store, the index holds the 3 rows still pending, the poll claims exactly those, and its
//! plan goes through the index.

mod support;

use deckhand::{
    domain::{RequestId, now_ms},
    store::{CLAIM_HEADS, Store},
};
use sqlx::Row;
use support::{Backend, TestDb, backends, plan};

const OWNER: &str = "index-test";
const DELIVERED: usize = 600;

/// Stores `n` pending Slack rows, each the first of its own request, numbered from `from`.
async fn store_pending(store: &Store, from: usize, n: usize) {
    let now = now_ms();
    for i in from..from + n {
        sqlx::query(
            "INSERT INTO deliveries (request_id, seq, surface, kind, state, attempts, created_at, next_at) \
             VALUES ($1, 1, 'slack', 'state', 'pending', 0, $2, $2)",
        )
        .bind(format!("r-dx{i:07}"))
        .bind(now)
        .execute(store.pool())
        .await
        .expect("insert a pending row");
    }
}

/// Claims every due row and marks each delivered, as the deliverer does after a post.
async fn deliver_all(store: &Store) -> usize {
    let mut delivered = 0;
    loop {
        let now = now_ms();
        let heads = store.claim_heads(now, 64, OWNER, now + 10_000).await.expect("claim");
        if heads.is_empty() {
            return delivered;
        }
        let marks = heads
            .iter()
            .map(|h| store.delivered(&h.request_id, h.seq, h.seq, OWNER, Some("1.1"), now, None));
        for marked in futures_util::future::join_all(marks).await {
            marked.expect("mark delivered");
            delivered += 1;
        }
    }
}

/// How many entries `deliveries_due` holds, from the statistics the backend keeps of it.
async fn entries(store: &Store, backend: Backend) -> i64 {
    match backend {
        Backend::Sqlite => {
            sqlx::query("ANALYZE deliveries")
                .execute(store.pool())
                .await
                .expect("analyze");
            let stat: String = sqlx::query("SELECT stat FROM sqlite_stat1 WHERE idx = 'deliveries_due'")
                .fetch_optional(store.pool())
                .await
                .expect("sqlite_stat1")
                .map(|r| r.try_get("stat").expect("stat"))
                .unwrap_or_else(|| "0".into());
            stat.split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .expect("row count")
        }
        Backend::Postgres => {
            // VACUUM drops the entries of the rows' old versions, as autovacuum does.
            sqlx::query("VACUUM ANALYZE deliveries")
                .execute(store.pool())
                .await
                .expect("vacuum");
            let row = sqlx::query("SELECT reltuples::bigint AS n FROM pg_class WHERE relname = 'deliveries_due'")
                .fetch_one(store.pool())
                .await
                .expect("pg_class");
            row.try_get("n").expect("reltuples")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poll_index_holds_only_the_backlog() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let store = db.store(4).await;
        store_pending(&store, 0, DELIVERED).await;
        assert_eq!(deliver_all(&store).await, DELIVERED, "every row claimed and marked");
        store_pending(&store, DELIVERED, 3).await;

        assert_eq!(
            entries(&store, backend).await,
            3,
            "the due index holds the pending rows only, not the {DELIVERED} delivered ones, on {backend:?}"
        );
        let now = now_ms();
        let plan = plan(&store, backend, CLAIM_HEADS, |q| {
            q.bind(now).bind(64_i64).bind(OWNER).bind(now)
        })
        .await;
        assert!(
            plan.contains("deliveries_due"),
            "the poll does not use the due index on {backend:?}:\n{plan}"
        );

        let now = now_ms();
        let mut claimed: Vec<String> = store
            .claim_heads(now, 64, OWNER, now + 10_000)
            .await
            .expect("claim")
            .iter()
            .map(|h| h.request_id.as_str().to_owned())
            .collect();
        claimed.sort();
        let expected: Vec<String> = (DELIVERED..DELIVERED + 3).map(|i| format!("r-dx{i:07}")).collect();
        assert_eq!(claimed, expected, "the poll claims exactly the pending rows");
        let delivered = store
            .deliveries(&RequestId::parse("r-dx0000000").expect("id"))
            .await
            .expect("deliveries");
        assert_eq!(delivered[0].state, "delivered", "the first row stays, delivered");
    }
}
