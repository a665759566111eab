//! Group commit: chat commands that arrive together are stored in shared transactions, and
//! each still comes back as its own request with its own events, delivery rows and audit
//! row; a repeated delivery of the same command (same idempotency key) still returns the
//! request it first created, even when both copies land in the same batch.

mod support;

use std::{collections::HashMap, sync::Arc};

use deckhand::domain::Surface;
use sqlx::Row;
use support::{Backend, TestDb, backends, release_invocation, spawn_app};

const COMMANDS: usize = 120;
const REPEATED: usize = 40;

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_share_commits_and_each_gets_its_own_request() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        // Every key once, and the first REPEATED keys a second time, all at once.
        let keys: Vec<String> = (0..COMMANDS)
            .map(|i| format!("trigger-{}", i % (COMMANDS - REPEATED)))
            .collect();
        let mut calls = tokio::task::JoinSet::new();
        for key in keys.clone() {
            let inv = release_invocation(&app, "alice", key.clone());
            let app = app.clone();
            calls.spawn(async move { (key, app.submit(inv).await) });
        }
        let mut by_key: HashMap<String, Vec<(String, bool)>> = HashMap::new();
        let mut returned = HashMap::new();
        while let Some(done) = calls.join_next().await {
            let (key, submitted) = done.expect("task");
            let submitted = submitted.expect("submitted");
            if !submitted.duplicate {
                returned.insert(submitted.request.id.clone(), submitted.request.clone());
            }
            by_key
                .entry(key)
                .or_default()
                .push((submitted.request.id.as_str().to_owned(), submitted.duplicate));
        }
        assert_eq!(by_key.len(), COMMANDS - REPEATED);
        for (key, answers) in &by_key {
            let firsts = answers.iter().filter(|(_, dup)| !dup).count();
            assert_eq!(firsts, 1, "{key}: exactly one call creates the request: {answers:?}");
            assert!(
                answers.iter().all(|(id, _)| *id == answers[0].0),
                "{key}: one request: {answers:?}"
            );
        }

        let store = &app.store;
        let stored = store
            .list(&deckhand::store::ListFilter {
                limit: 500,
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(stored.len(), COMMANDS - REPEATED, "one row per key");
        for listed in &stored {
            // Every column as written, read back on its own (not the record the insert returned).
            let request = &store.get(&listed.id).await.expect("get").expect("stored");
            // What the submission answered is what was stored, to the last column.
            let answered = &returned[&request.id];
            assert_eq!(
                serde_json::to_value(answered).unwrap(),
                serde_json::to_value(request).unwrap()
            );
            assert_eq!(answered.surface_data, request.surface_data);
            assert_eq!(request.state.as_str(), "pending_approval");
            assert_eq!(
                (request.command.as_str(), request.text.as_str()),
                ("release", "release web")
            );
            assert_eq!((request.requester.as_str(), request.surface), ("alice", Surface::Slack));
            assert_eq!(request.channel.as_deref(), Some("C0DECK"));
            assert_eq!(request.thread, None);
            assert_eq!(
                request.surface_data.as_ref().and_then(|d| d["user"].as_str()),
                Some("alice")
            );
            assert!(request.approval.is_some(), "{}: an approval policy", request.id);
            assert!(request.approval_expires_at > Some(request.created_at), "{}", request.id);
            assert_eq!(request.created_at, request.updated_at);
            let events = store.events(&request.id, 0).await.expect("events");
            let kinds: Vec<(i64, &str)> = events.iter().map(|e| (e.seq, e.kind.as_str())).collect();
            assert_eq!(kinds, [(1, "state"), (2, "approval")], "{}", request.id);
            let deliveries = store.deliveries(&request.id).await.expect("deliveries");
            let seqs: Vec<i64> = deliveries.iter().map(|d| d.seq).collect();
            assert_eq!(seqs, [1, 2], "a delivery row per event of {}", request.id);
            let audit = store.audit(&request.id).await.expect("audit");
            assert_eq!(audit.len(), 1, "{}: {audit:?}", request.id);
            assert_eq!((audit[0].actor.as_str(), audit[0].action.as_str()), ("alice", "submit"));
            assert_eq!(audit[0].surface, "slack");
            assert_eq!(audit[0].from_state, None);
            assert_eq!(audit[0].to_state.as_deref(), Some("pending_approval"));
            assert_eq!(audit[0].detail.as_deref(), Some("release web"));
            assert!(events.iter().all(|e| e.at == request.created_at), "{events:?}");
            assert!(
                deliveries
                    .iter()
                    .all(|d| d.state == "pending" && d.attempts == 0 && d.surface == "slack"),
                "{deliveries:?}"
            );
        }

        // The commands shared transactions: fewer commits than requests.
        let metrics = test
            .http
            .get(format!("{}/metrics", test.url))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("body");
        let commits = metrics_value(&metrics, "deckhand_store_group_commits_total");
        let grouped = metrics_value(&metrics, "deckhand_store_grouped_requests_total");
        eprintln!("{grouped} requests in {commits} commits");
        assert_eq!(grouped, (COMMANDS - REPEATED) as u64, "{metrics}");
        assert!(commits < grouped, "{commits} commits for {grouped} requests");
        test.shutdown().await;
    }
}

fn metrics_value(text: &str, name: &str) -> u64 {
    metric(text, &format!("{name} "))
}

/// A batch whose transaction fails part-way stores none of its rows, and the writer takes the
/// next batch: on SQLite the transaction is one query (src/store/one_trip.rs), and a failed
/// statement leaves it open until deckhand rolls it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_stores_nothing_and_the_next_one_commits() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.expect("open the store");
        // The audit row is the batch's last insert: the request and its events are written
        // (and must be undone) when it fails.
        let (fail, unfail) = match backend {
            Backend::Sqlite => (
                vec!["CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END"],
                vec!["DROP TRIGGER no_audit"],
            ),
            Backend::Postgres => (
                vec![
                    "CREATE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
                    "CREATE TRIGGER no_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION no_audit()",
                ],
                vec!["DROP TRIGGER no_audit ON audit", "DROP FUNCTION no_audit()"],
            ),
        };
        for sql in fail {
            sqlx::query(sql)
                .execute(&pool)
                .await
                .expect("install the failing trigger");
        }
        let refused = app.submit(release_invocation(&app, "alice", "refused".into())).await;
        assert!(refused.is_err(), "the insert should fail: {refused:?}");
        for sql in unfail {
            sqlx::query(sql).execute(&pool).await.expect("drop the trigger");
        }

        let stored = app
            .submit(release_invocation(&app, "alice", "accepted".into()))
            .await
            .expect("the next batch");
        assert!(!stored.duplicate);
        let id = stored.request.id.as_str();
        let counts = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM requests), (SELECT COUNT(*) FROM events WHERE request_id <> $1), \
             (SELECT COUNT(*) FROM audit WHERE request_id <> $1), (SELECT COUNT(*) FROM audit WHERE request_id = $1)",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("count");
        let count = |i: usize| counts.get::<i64, _>(i);
        assert_eq!(
            (count(0), count(1), count(2), count(3)),
            (1, 0, 0, 1),
            "only the accepted command's request, events and audit row"
        );
        pool.close().await;
        test.shutdown().await;
    }
}

/// `n` new requests (keys `{prefix}-{i}`) whose first rows `owner` claimed: their heads, and
/// the time of the claim.
async fn submitted_and_claimed(
    app: &Arc<deckhand::app::App>,
    prefix: &str,
    n: usize,
    owner: &str,
) -> (Vec<deckhand::store::Head>, i64) {
    for i in 0..n {
        app.submit(release_invocation(app, "alice", format!("{prefix}-{i}")))
            .await
            .expect("submitted");
    }
    let now = deckhand::domain::now_ms();
    let heads = app
        .store
        .claim_heads(now, 64, owner, now + 60_000)
        .await
        .expect("claim");
    assert_eq!(heads.len(), n, "each request's first row, claimed");
    (heads, now)
}

/// Posts finished together share a bookkeeping commit (on SQLite one query from BEGIN to
/// COMMIT), and each mark is still its own compare-and-set: a deliverer that holds its row
/// marks it delivered and claims the prompt's row after it; one whose claim is another's
/// (here a "thief") changes neither row, in the same batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn posts_finished_together_share_a_commit_and_each_mark_is_its_own() {
    const OWNER: &str = "batch-test";
    const N: usize = 12;
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        let (heads, now) = submitted_and_claimed(&app, "marks", N, OWNER).await;
        let (commits, writes) = app.store.bookkeeping_commits();
        let marks = heads.iter().enumerate().map(|(i, head)| {
            let store = &app.store;
            let who = if i % 2 == 0 { OWNER } else { "thief" };
            let ts = format!("ts-{i}");
            async move {
                let id = &head.request_id;
                let claimed = store
                    .delivered(id, 1, 1, who, Some(&ts), now, Some((2, now + 60_000)))
                    .await
                    .expect("delivered");
                (i, claimed, store.deliveries(id).await.expect("rows"))
            }
        });
        for (i, claimed, rows) in futures_util::future::join_all(marks).await {
            let (first, prompt) = (&rows[0], &rows[1]);
            if i % 2 == 0 {
                assert!(claimed, "request {i}: its owner claims the prompt's row");
                assert_eq!(first.state, "delivered", "request {i}");
                assert_eq!(first.platform_id.as_deref(), Some(format!("ts-{i}").as_str()));
                assert_eq!((prompt.state.as_str(), prompt.attempts), ("pending", 1), "request {i}");
            } else {
                assert!(!claimed, "request {i}: not the thief's to mark");
                assert_eq!((first.state.as_str(), first.platform_id.as_deref()), ("pending", None));
                assert_eq!(prompt.attempts, 0, "request {i}: the prompt's row is not claimed");
            }
        }
        let (after, written) = app.store.bookkeeping_commits();
        let shared = after - commits;
        assert!((1..N as u64).contains(&shared), "{N} marks took {shared} commits");
        assert_eq!(written - writes, N as u64, "every mark went in a batch, none alone");
        test.shutdown().await;
    }
}

/// New requests, "delivered" marks and failures arriving together: on SQLite a failure is
/// written one statement at a time, so such a batch goes apart (new requests first, then the
/// bookkeeping); every write still lands as it would alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_requests_marks_and_failures_arriving_together_each_land() {
    const OWNER: &str = "mixed-test";
    const N: usize = 8;
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        let (heads, now) = submitted_and_claimed(&app, "mixed", N, OWNER).await;
        let store = &app.store;
        let writes = heads.iter().enumerate().map(|(i, head)| async move {
            let id = &head.request_id;
            if i % 2 == 0 {
                let claimed = store.delivered(id, 1, 1, OWNER, Some("1.1"), now, Some((2, now + 60_000)));
                assert!(
                    claimed.await.expect("delivered"),
                    "request {i}: its owner claims the prompt"
                );
            } else {
                let failed = store.delivery_failed(id, 1, 1, OWNER, "slack said no", Some(now + 5_000));
                failed.await.expect("failed");
            }
        });
        let fresh = (0..N).map(|i| {
            let app = app.clone();
            async move {
                app.submit(release_invocation(&app, "alice", format!("fresh-{i}")))
                    .await
            }
        });
        let (_, submitted) = tokio::join!(
            futures_util::future::join_all(writes),
            futures_util::future::join_all(fresh)
        );
        for s in submitted {
            let s = s.expect("submitted");
            assert!(!s.duplicate);
            let stored = store.get(&s.request.id).await.expect("get").expect("stored");
            assert_eq!(stored.id, s.request.id);
        }
        for (i, head) in heads.iter().enumerate() {
            let rows = store.deliveries(&head.request_id).await.expect("rows");
            if i % 2 == 0 {
                assert_eq!(rows[0].state, "delivered", "request {i}");
                assert_eq!(rows[1].attempts, 1, "request {i}: the prompt's row is claimed");
            } else {
                assert_eq!(rows[0].state, "pending", "request {i}: tried again later");
                assert_eq!(rows[0].error.as_deref(), Some("slack said no"), "request {i}");
                assert_eq!(rows[1].attempts, 0, "request {i}");
            }
        }
        test.shutdown().await;
    }
}

/// A group-commit task keeps the writer's connection from one batch to the next while writes
/// keep coming (SQLite has one), but gives it back often: a write outside the queues (an
/// event appended) gets its turn within a second while commands pour in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_writes_get_the_writer_while_commands_pour_in() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        let first = app
            .submit(release_invocation(&app, "alice", "pour-first".into()))
            .await
            .expect("submitted")
            .request
            .id;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut pouring = tokio::task::JoinSet::new();
        for t in 0..16 {
            let (app, stop) = (app.clone(), stop.clone());
            pouring.spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    app.submit(release_invocation(&app, "alice", format!("pour-{t}-{n}")))
                        .await
                        .expect("submitted");
                    n += 1;
                }
                n
            });
        }
        // Let the queue fill before the outside write asks for the writer.
        let started = std::time::Instant::now();
        while app.store.group_commits().1 < 200 && started.elapsed() < std::time::Duration::from_secs(10) {
            tokio::task::yield_now().await;
        }
        let data =
            deckhand::events::EventData::Output(deckhand::events::Output::fields(serde_json::json!({"line": "x"})));
        let asked = std::time::Instant::now();
        let appended = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            app.store.append_event(&first, "outside the queues", data),
        )
        .await;
        let waited = asked.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut poured = 0;
        while let Some(n) = pouring.join_next().await {
            poured += n.expect("task");
        }
        appended.expect("the outside write was starved").expect("appended");
        assert!(poured > 0, "commands kept coming");
        assert!(
            waited < std::time::Duration::from_secs(1),
            "the outside write waited {waited:?}"
        );
        test.shutdown().await;
    }
}
