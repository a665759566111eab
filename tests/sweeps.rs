//! The expiry sweep reads only what ran out. Every replica asks the store for overdue
//! approvals each poll interval (`Store::expired_approvals`); with thousands of requests
//! waiting for approval it must not read them all (before migration 0015 it did: 40-90 ms a
//! sweep on PostgreSQL at 100,000 pending requests, both cores busy while acks waited).
//! On SQLite and PostgreSQL: the sweep returns exactly the overdue requests, and the query
//! plan reads them through `requests_approval_expiry`.

mod support;

use deckhand::{
    domain::{State, Surface, now_ms},
    store::{Actor, EXPIRED_APPROVALS, NewRequest, Store},
};
use support::{TestDb, backends, plan};

fn waiting(i: usize, expires_at: i64) -> NewRequest {
    NewRequest {
        command: "deploy".into(),
        action: "deploy".into(),
        text: format!("deploy web:{i} to prod"),
        args: Default::default(),
        state: State::PendingApproval,
        requester: "alice".into(),
        requester_groups: Vec::new(),
        surface: Surface::Api,
        channel: None,
        thread: None,
        surface_data: None,
        idempotency_key: Some(format!("sweep-{i}")),
        approval: None,
        approval_expires_at: Some(expires_at),
        prompt: None,
    }
}

/// Stores `n` requests waiting for approval, `overdue` of them (the first ones) past their
/// expiry; their ids.
async fn store_waiting(store: &Store, n: usize, overdue: usize) -> Vec<String> {
    let now = now_ms();
    let actor = Actor {
        who: "alice",
        surface: "api",
    };
    let mut overdue_ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let news: Vec<NewRequest> = chunk
            .iter()
            .map(|&i| waiting(i, if i < overdue { now - 1_000 } else { now + 3_600_000 }))
            .collect();
        let stored =
            futures_util::future::join_all(news.iter().map(|new| store.insert_request(new, actor, None))).await;
        for (new, r) in news.iter().zip(stored) {
            let (record, created, _) = r.expect("stored");
            assert!(created);
            if new.approval_expires_at < Some(now) {
                overdue_ids.push(record.id.as_str().to_owned());
            }
        }
    }
    overdue_ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_sweep_reads_only_overdue_approvals() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let store = db.store(4).await;
        let mut overdue = store_waiting(&store, 3_000, 3).await;

        let mut swept: Vec<String> = store
            .expired_approvals(now_ms())
            .await
            .expect("sweep")
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect();
        swept.sort();
        overdue.sort();
        assert_eq!(swept, overdue, "exactly the three overdue requests");

        // With statistics as a running store has them, the plan goes through the index.
        sqlx::query("ANALYZE requests")
            .execute(store.pool())
            .await
            .expect("analyze");
        let plan = plan(&store, backend, EXPIRED_APPROVALS, |q| q.bind(1_i64)).await;
        assert!(
            plan.contains("requests_approval_expiry"),
            "the sweep does not use the expiry index on {backend:?}:\n{plan}"
        );
        assert!(!plan.contains("Seq Scan") && !plan.contains("SCAN requests"), "{plan}");
    }
}
