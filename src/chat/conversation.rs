//! A chat conversation's state (message ids, tokens, what was shown) kept with its request
//! in the store's surface data. Every delivery reads it with its request (the outbox reads
//! the record for each delivery) and writes it back only when showing the event changed it,
//! comparing before and after, so what was learnt (a message id) is kept even when a later
//! call failed.
//!
//! The write is a compare-and-set: when another writer changed the state since it was read
//! (an interaction marking the answer given, a second replica), the fields this writer
//! changed are laid over the fresh state and the write is tried again, so neither writer's
//! change is lost.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::store::{RequestRecord, Store, StoreError};

/// The conversation state kept with `record`; `None` when it is not this platform's
/// conversation. The outbox reads the record for each delivery, so this is the state as of
/// that read; a change made since is not lost, because [`save_if_changed`] lays this
/// writer's changes over whatever is stored by then.
pub fn of<T: DeserializeOwned>(record: &RequestRecord) -> Option<T> {
    record
        .surface_data
        .clone()
        .and_then(|v| serde_json::from_value::<T>(v).ok())
}

/// Attempts at a compare-and-set before giving up (each retry follows another writer's
/// success, so running out means heavy contention on one conversation).
const ATTEMPTS: usize = 5;

/// Stores what changed from `before` to `after`, over whatever is stored now, and returns
/// the state as written (`None` when nothing changed, so nothing was written). `record` is
/// the request `before` was read from: the first compare-and-set expects its stored text,
/// not `before` written out again, which differs from it whenever the type fills in a field
/// the stored JSON lacks (every new conversation's `ts: null`) and so lost every first try.
pub async fn save_if_changed<T: Serialize + PartialEq>(
    store: &Store,
    record: &RequestRecord,
    before: &T,
    after: &T,
) -> Result<Option<Value>, StoreError> {
    if after == before {
        return Ok(None);
    }
    let id = &record.id;
    let json = |v: &T| serde_json::to_value(v).map_err(|e| StoreError::Corrupt(e.to_string()));
    let (before, after) = (json(before)?, json(after)?);
    let mut stored = record.surface_data.clone();
    for _ in 0..ATTEMPTS {
        let merged = overlay(stored.clone().unwrap_or(Value::Null), &before, &after);
        if store.swap_surface_data(id, stored.as_ref(), &merged).await? {
            return Ok(Some(merged));
        }
        let Some(record) = store.get(id).await? else {
            // The request is gone: nothing to keep the state with.
            return Ok(None);
        };
        stored = record.surface_data;
    }
    Err(StoreError::Corrupt(format!(
        "the conversation state of {id} kept changing under {ATTEMPTS} writes"
    )))
}

/// `fresh` with the top-level fields that changed from `before` to `after` set (or
/// removed) as in `after`.
fn overlay(fresh: Value, before: &Value, after: &Value) -> Value {
    let (Value::Object(mut fresh), Some(b), Some(a)) = (fresh, before.as_object(), after.as_object()) else {
        return after.clone();
    };
    for key in b.keys().chain(a.keys()) {
        match a.get(key) {
            Some(v) if b.get(key) != Some(v) => {
                fresh.insert(key.clone(), v.clone());
            }
            None if b.contains_key(key) => {
                fresh.remove(key);
            }
            _ => {}
        }
    }
    Value::Object(fresh)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::overlay;

    #[test]
    fn a_writer_changes_only_its_own_fields_over_the_fresh_state() {
        let before = json!({ "ts": null, "answered": false, "n": 1 });
        let after = json!({ "ts": "1.2", "answered": false });
        // Another writer set `answered` meanwhile: it stays; `ts` is this writer's; `n` it removed.
        let fresh = json!({ "ts": null, "answered": true, "n": 1 });
        assert_eq!(
            overlay(fresh, &before, &after),
            json!({ "ts": "1.2", "answered": true })
        );
    }
}
