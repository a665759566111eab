//! The outbox reads a poll's claimed requests and events in two statements
//! (`Store::load_heads`); what it reads must be what the per-request reads return: the
//! request, its events from the head's row on, and the last state event before that row
//! (the state a late post shows). SQLite and PostgreSQL.

mod support;

use deckhand::{
    app::Invocation,
    domain::{RequestId, State, Surface, now_ms},
    events::{EventData, Output},
    store::{Head, Store},
};
use support::{TestDb, backends, spawn_app};

const OWNER: &str = "reader-test";

/// Each head as the deliverer would read it alone, and as `load_heads` read it: (id, request
/// text, surface data, events as (seq, kind, message)).
async fn compare(store: &Store, heads: &[Head]) {
    let loaded = store.load_heads(heads).await.expect("load heads");
    assert_eq!(loaded.len(), heads.len(), "one entry per claimed request");
    for head in heads {
        let alone = store.get(&head.request_id).await.expect("get").expect("request");
        let events = store.events_from(&head.request_id, head.seq).await.expect("events");
        let (request, read) = loaded.get(&head.request_id).expect("loaded");
        assert_eq!(request.id, alone.id);
        assert_eq!(request.text, alone.text);
        assert_eq!(request.surface_data, alone.surface_data);
        let shape = |e: &[deckhand::store::Event]| -> Vec<(i64, String, String)> {
            e.iter()
                .map(|e| (e.seq, e.kind.as_str().to_owned(), e.message.clone()))
                .collect()
        };
        assert_eq!(
            shape(read),
            shape(&events),
            "events of {} from {}",
            head.request_id,
            head.seq
        );
    }
}

async fn claim(store: &Store) -> Vec<Head> {
    let now = now_ms();
    store.claim_heads(now, 64, OWNER, now + 60_000).await.expect("claim")
}

#[tokio::test]
async fn a_poll_reads_what_each_delivery_would_read_alone() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        let mut ids: Vec<RequestId> = Vec::new();
        for i in 0..3 {
            let submitted = app
                .submit(Invocation {
                    principal: app.directory.user("alice").expect("alice"),
                    surface: Surface::Slack,
                    text: format!("release web-{i}"),
                    channel: Some("C0DECK".into()),
                    thread: None,
                    surface_data: Some(serde_json::json!({ "channel": "C0DECK", "n": i })),
                    idempotency_key: Some(format!("reads-{i}")),
                })
                .await
                .expect("submitted");
            ids.push(submitted.request.id);
        }
        let store = &app.store;

        // Three new requests: each head is its state row, with the approval prompt after it.
        let heads = claim(store).await;
        assert_eq!(heads.len(), 3);
        assert!(heads.iter().all(|h| h.seq == 1));
        compare(store, &heads).await;
        assert_eq!(store.load_heads(&heads).await.expect("load")[&ids[0]].1.len(), 2);

        // The first request's two rows are posted; a state change and an output follow.
        let a = &ids[0];
        let until = now_ms() + 60_000;
        assert!(
            store
                .delivered(a, 1, 1, OWNER, None, now_ms(), Some((2, until)))
                .await
                .expect("delivered")
        );
        store
            .delivered(a, 2, 2, OWNER, None, now_ms(), None)
            .await
            .expect("delivered");
        let queued = EventData::state(State::Queued, None, None);
        store.append_event(a, "queued", queued).await.expect("state");
        let output = EventData::Output(Output::fields(serde_json::json!({ "line": "hello" })));
        store.append_event(a, "hello", output).await.expect("output");
        let heads = claim(store).await;
        assert_eq!(heads.iter().map(|h| h.seq).collect::<Vec<_>>(), [3]);
        store
            .delivered(a, 3, 3, OWNER, None, now_ms(), None)
            .await
            .expect("delivered");

        // Its head is now the output: read with the state event before it, nothing older.
        let heads = claim(store).await;
        assert_eq!(heads.iter().map(|h| h.seq).collect::<Vec<_>>(), [4]);
        compare(store, &heads).await;
        let seqs: Vec<i64> = store.load_heads(&heads).await.expect("load")[a]
            .1
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [3, 4]);

        // No heads, no reads.
        assert!(store.load_heads(&[]).await.expect("empty").is_empty());
        test.shutdown().await;
    }
}
