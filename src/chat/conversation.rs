//! A chat conversation's state (message ids, tokens, what was shown) kept with its request
//! in the store's surface data. Every event reads it fresh (the record a surface is handed
//! may predate the latest write) and writes it back only when showing the event changed it,
//! comparing before and after, so what was learnt (a message id) is kept even when a later
//! call failed.

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    domain::RequestId,
    store::{RequestRecord, Store, StoreError},
};

/// The request and its conversation state, read fresh; `None` when there is no such request
/// or it is not this platform's conversation.
pub async fn load<T: DeserializeOwned>(
    store: &Store,
    id: &RequestId,
) -> Result<Option<(RequestRecord, T)>, StoreError> {
    let Some(record) = store.get(id).await? else {
        return Ok(None);
    };
    let state = record
        .surface_data
        .clone()
        .and_then(|v| serde_json::from_value::<T>(v).ok());
    Ok(state.map(|s| (record, s)))
}

/// Stores `after` if it differs from `before`.
pub async fn save_if_changed<T: Serialize + PartialEq>(
    store: &Store,
    id: &RequestId,
    before: &T,
    after: &T,
) -> Result<(), StoreError> {
    if after == before {
        return Ok(());
    }
    let value = serde_json::to_value(after).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.set_surface_data(id, &value).await
}
