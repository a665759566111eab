//! The conversation state's updates of new requests, on pages with room for them. Each
//! command's request row is updated after its commit (`swap_surface_data`, twice in a
//! Slack thread's life); on PostgreSQL an update that finds no room on its row's page writes
//! a new entry in each of the table's five indexes, and packed pages made that most first
//! updates (src/store/page_room.rs, issue 14).
//!
//! On SQLite and PostgreSQL: 300 new requests, each swapped once, every swap lands; on
//! PostgreSQL most of the updates are heap-only (no index touched).

mod support;

use std::time::Duration;

use deckhand::{
    domain::{RequestId, State, Surface},
    store::{Actor, NewRequest, Store},
};
use serde_json::json;
use sqlx::Row;
use support::{Backend, TestDb, backends};

const REQUESTS: usize = 300;

fn new_request(i: usize) -> NewRequest {
    NewRequest {
        command: "release".into(),
        action: "release".into(),
        text: format!("release web:{i}"),
        args: Default::default(),
        state: State::PendingApproval,
        requester: "alice".into(),
        requester_groups: vec!["developers".into()],
        surface: Surface::Slack,
        channel: Some("C0DECK".into()),
        thread: None,
        surface_data: Some(json!({"channel": "C0DECK", "user": "UALICE"})),
        idempotency_key: Some(format!("trigger-{i}")),
        approval: None,
        approval_expires_at: None,
        prompt: None,
    }
}

/// (updates, heap-only updates) of `requests` as PostgreSQL's statistics report them.
async fn updates(store: &Store) -> (i64, i64) {
    let row = sqlx::query(
        "SELECT n_tup_upd AS updates, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = 'requests'",
    )
    .fetch_one(store.pool())
    .await
    .expect("pg_stat_user_tables");
    (
        row.try_get("updates").expect("updates"),
        row.try_get("hot").expect("hot"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_update_of_a_new_request_finds_room_on_its_page() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let store = db.store(4).await;
        // Run twice: the second finds the setting in place.
        store.migrate().await.expect("migrate again");
        let actor = Actor {
            who: "alice",
            surface: "slack",
        };
        let mut ids: Vec<RequestId> = Vec::new();
        for i in 0..REQUESTS {
            let (stored, created, _) = store
                .insert_request(&new_request(i), actor, None)
                .await
                .expect("insert");
            assert!(created);
            ids.push(stored.id);
        }
        let before = json!({"channel": "C0DECK", "user": "UALICE"});
        for id in &ids {
            // As the conversation state grows: the root message's ts and the digest of its text.
            let after = json!({"channel": "C0DECK", "user": "UALICE", "ts": "1700000000.000100",
                "shown": "9f2c4e1a7b3d5f608192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"});
            assert!(
                store.swap_surface_data(id, Some(&before), &after).await.expect("swap"),
                "{id}: the swap lands"
            );
            let stored = store.get(id).await.expect("get").expect("stored");
            assert_eq!(stored.surface_data, Some(after));
        }
        if backend == Backend::Sqlite {
            continue;
        }
        // The statistics reach the view within a few seconds of the writers going idle.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let (all, hot) = loop {
            let (all, hot) = updates(&store).await;
            if all >= REQUESTS as i64 {
                break (all, hot);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{all} updates of {REQUESTS} reported"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!("{hot} of {all} updates heap-only");
        assert!(
            hot * 100 >= all * 80,
            "{hot} of {all} updates heap-only: pages without room"
        );
    }
}

/// A deployment whose tables were created by another role: deckhand's own role can read and
/// write them but not alter them. Starting still works (the fill factor is an optimization);
/// on SQLite there are no roles, and migrating twice is the whole case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_does_not_own_the_tables_still_starts() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let owner = db.store(2).await;
        if backend == Backend::Sqlite {
            owner.migrate().await.expect("migrate again");
            continue;
        }
        let role = format!(
            "deckhand_app_{}",
            deckhand::domain::RequestId::generate().as_str().replace('-', "_")
        );
        for sql in [
            format!("CREATE ROLE {role} LOGIN PASSWORD 'app'"),
            format!("GRANT USAGE, CREATE ON SCHEMA public TO {role}"),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
            "ALTER TABLE requests RESET (fillfactor)".to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(owner.pool())
                .await
                .expect("set up the role");
        }
        let (scheme, rest) = db.url.split_once("://").expect("a URL");
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let app_url = format!("{scheme}://{role}:app@{host}");
        let app = Store::connect(&app_url, 2).await.expect("connect as the app's role");
        app.migrate().await.expect("starts without owning the tables");
        let actor = Actor {
            who: "alice",
            surface: "slack",
        };
        let (_, created, _) = app.insert_request(&new_request(0), actor, None).await.expect("insert");
        assert!(created, "the app's role stores requests");
        app.close().await;
        // Roles belong to the cluster, not to the test's database.
        for sql in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(owner.pool())
                .await
                .expect("drop the role");
        }
    }
}
