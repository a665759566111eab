//! A chat conversation's state is written by compare-and-set: a writer holding a stale copy
//! changes nothing by itself, and `chat::conversation::save_if_changed` lays its own changes
//! over the fresh state, so two writers' changes are both kept. SQLite and PostgreSQL.

mod support;

use deckhand::{app::Invocation, chat::conversation, domain::Surface};
use serde_json::{Value, json};
use support::{TestDb, backends, spawn_app};

/// A Slack request from alice with `state` as its conversation state.
async fn submit(app: &std::sync::Arc<deckhand::app::App>, state: Value, key: &str) -> deckhand::app::Submitted {
    app.submit(Invocation {
        principal: app.directory.user("alice").expect("alice"),
        surface: Surface::Slack,
        text: "release web".into(),
        channel: Some("C0DECK".into()),
        thread: None,
        surface_data: Some(state),
        idempotency_key: Some(key.into()),
    })
    .await
    .expect("submitted")
}

#[tokio::test]
async fn stale_writers_change_nothing_and_merged_writes_keep_both_changes() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        let first = json!({ "channel": "C0DECK", "ts": null, "answered": false });
        let submitted = submit(&app, first.clone(), "conversation-1").await;
        let as_read = submitted.request;
        let id = as_read.id.clone();
        let stored = |v: Option<Value>| v.expect("surface data");

        // Another writer marks the answer given.
        let answered = json!({ "channel": "C0DECK", "ts": null, "answered": true });
        assert!(
            app.store
                .swap_surface_data(&id, Some(&first), &answered)
                .await
                .expect("swap")
        );
        // A writer still holding `first` is refused and changes nothing.
        let stale = json!({ "channel": "C0DECK", "ts": "1.1", "answered": false });
        assert!(
            !app.store
                .swap_surface_data(&id, Some(&first), &stale)
                .await
                .expect("swap")
        );
        let now = app.store.get(&id).await.expect("get").expect("request");
        assert_eq!(stored(now.surface_data), answered);

        // Through the chat layer, the stale writer's own change (the message ts) lands over
        // the fresh state, and the other writer's `answered` stays.
        conversation::save_if_changed(&app.store, &as_read, &first, &stale)
            .await
            .expect("save");
        let now = app.store.get(&id).await.expect("get").expect("request");
        assert_eq!(
            stored(now.surface_data),
            json!({ "channel": "C0DECK", "ts": "1.1", "answered": true })
        );
        test.shutdown().await;
    }
}

/// What a platform's typed state adds to the stored JSON (a field it fills in with null)
/// must not make the first compare-and-set miss: the write expects the text it read.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Clone)]
struct Typed {
    channel: String,
    ts: Option<String>,
}

#[tokio::test]
async fn a_conversation_saved_as_read_is_one_write() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let test = spawn_app(&db).await;
        let app = test.app().clone();
        let submitted = submit(&app, json!({ "channel": "C0DECK" }), "conversation-2").await;
        let record = submitted.request;
        let before: Typed = conversation::of(&record).expect("typed state");
        let after = Typed {
            ts: Some("1.1".into()),
            ..before.clone()
        };
        let (_, statements) = app.store.bookkeeping_commits();
        conversation::save_if_changed(&app.store, &record, &before, &after)
            .await
            .expect("save");
        assert_eq!(
            app.store.bookkeeping_commits().1 - statements,
            1,
            "the first compare-and-set should win"
        );
        let now = app.store.get(&record.id).await.expect("get").expect("request");
        assert_eq!(now.surface_data, Some(json!({ "channel": "C0DECK", "ts": "1.1" })));
        test.shutdown().await;
    }
}
