//! Several deckhand replicas on one store: PostgreSQL replicas wake each other at once
//! (LISTEN/NOTIFY), and SQLite refuses a second replica on the same file.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use support::{Backend, TestDb, actions::Probe, backends, spawn_app_with, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_replica_on_one_sqlite_file_is_refused_clearly() {
    // SQLite only: PostgreSQL takes several replicas (the next test).
    let db = TestDb::new(Backend::Sqlite).await;
    let config = test_config(&db.url);
    let first = spawn_app_with(config.clone(), Arc::new(Probe::default())).await;
    let second = deckhand::startup::Builder::new(config.clone())
        .start("127.0.0.1:0".parse().unwrap())
        .await;
    let Err(e) = second else {
        panic!("a second replica started on the same SQLite file")
    };
    let said = e.to_string();
    assert!(
        said.contains("another deckhand is already serving the SQLite store") && said.contains("PostgreSQL"),
        "{said}"
    );
    // Nothing changed for the first one; once it stops, the file can be served again.
    let (status, _) = first.submit_as("alice", "deploy nginx:1.27 to q1").await;
    assert_eq!(status, 201);
    first.shutdown().await;
    let again = spawn_app_with(config, Arc::new(Probe::default())).await;
    again.shutdown().await;
}

/// Replica B's worker is busy, so only replica A can run what B approves; with the poll
/// far away, A starts it because B's NOTIFY woke it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_approved_on_one_replica_starts_on_another_within_100ms() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("note: PostgreSQL is off; LISTEN/NOTIFY is PostgreSQL's");
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let mut config = test_config(&db.url);
    config.worker.poll_interval = "30s".parse().unwrap();
    config.worker.concurrency = 1;
    let first = spawn_app_with(config.clone(), Arc::new(Probe::default())).await;
    let second = spawn_app_with(config, Arc::new(Probe::default())).await;
    // Fill one replica's only slot (whichever claims it): call it B; A stays free.
    let (_, busy) = second.submit_as("alice", "hold busy").await;
    let first_holds = tokio::select! {
        _ = first.probe.started.notified() => true,
        _ = second.probe.started.notified() => false,
    };
    let (a, b) = if first_holds {
        (&second, &first)
    } else {
        (&first, &second)
    };
    let (_, v) = b.submit_as("alice", "deploy nginx:1.27 to web tier=prod").await;
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["request"]["state"], "pending_approval", "{v}");

    let approved = Instant::now();
    let (status, _) = b.approve("olga", &id).await;
    assert_eq!(status, 200);
    // A's worker runs it (B's is busy); its start is on record.
    let deadline = Instant::now() + Duration::from_secs(5);
    let started = loop {
        let (_, now) = a.get_as("alice", &format!("/api/v1/requests/{id}")).await;
        if let Some(t) = now["request"]["started_at"].as_i64() {
            break t;
        }
        assert!(Instant::now() < deadline, "A never started it: {now:#}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (_, now) = a.get_as("alice", &format!("/api/v1/requests/{id}")).await;
    let approved_at = now["approvals"][0]["at"].as_i64().expect("approval time");
    assert!(
        started - approved_at < 100,
        "started {} ms after the approval (test saw {:?})",
        started - approved_at,
        approved.elapsed()
    );
    assert_eq!(a.probe.count("web"), 1, "replica A ran it");
    b.probe.release.notify_one();
    b.wait_for_state(busy["request"]["id"].as_str().unwrap(), &["succeeded"])
        .await;
    first.shutdown().await;
    second.shutdown().await;
}
