//! A request's events: appended with their sequence number (and, for a chat request, the
//! outbox's delivery row) in the caller's transaction, read in order for streams and pages,
//! and read from a given event on, with the state before it, for the outbox.

use std::str::FromStr;

use sqlx::Row;

use super::{Event, Store, StoreError, insert, outbox, rows::events_from_rows};
use crate::{
    domain::{RequestId, Surface, now_ms},
    events::EventData,
};

impl Store {
    pub async fn append_event(&self, id: &RequestId, message: &str, data: EventData) -> Result<Event, StoreError> {
        let mut tx = self.begin().await?;
        let ev = append_event_tx(&mut tx, id, message, data, now_ms()).await?;
        tx.commit().await?;
        Ok(ev)
    }

    pub async fn events(&self, id: &RequestId, after: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, kind, message, data FROM events WHERE request_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(id.as_str())
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        events_from_rows(id, &rows)
    }

    /// What the outbox needs to show event `seq` of `id` and those after it, in one read:
    /// the last state event stored before `seq` (the state the request was in then, so late
    /// events are shown as of their time without reading the whole history), then the
    /// events from `seq` on, in order.
    pub async fn events_from(&self, id: &RequestId, seq: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, kind, message, data FROM events WHERE request_id = $1 AND seq >= $2 \
             UNION ALL SELECT * FROM (SELECT seq, at, kind, message, data FROM events \
               WHERE request_id = $1 AND seq < $2 AND kind = 'state' ORDER BY seq DESC LIMIT 1) AS before \
             ORDER BY seq",
        )
        .bind(id.as_str())
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        events_from_rows(id, &rows)
    }
}

pub(super) async fn append_event_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &RequestId,
    message: &str,
    data: EventData,
    now: i64,
) -> Result<Event, StoreError> {
    let kind = data.kind();
    let row = sqlx::query("UPDATE requests SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq, surface")
        .bind(id.as_str())
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = row.try_get("event_seq")?;
    let surface: String = row.try_get("surface")?;
    sqlx::query("INSERT INTO events (request_id, seq, at, kind, message, data) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id.as_str())
        .bind(seq)
        .bind(now)
        .bind(kind.as_str())
        .bind(message)
        .bind(Some(insert::serialize(&data)?))
        .execute(&mut **tx)
        .await?;
    if let Some(surface) = Surface::from_str(&surface).ok().filter(|s| outbox::delivers(*s)) {
        outbox::insert_tx(tx, id, seq, surface, kind.as_str(), now).await?;
    }
    Ok(Event {
        request_id: id.clone(),
        seq,
        at: now,
        kind,
        message: message.to_owned(),
        data,
    })
}
