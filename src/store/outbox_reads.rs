//! What the outbox reads for a poll's claimed heads: their requests and their events, two
//! statements for the whole poll. Read per head, they were two reads for every command
//! (issue 14), each a round trip to a SQLite worker thread or to the PostgreSQL server on the
//! same cores as the acknowledgements. The heads travel as one JSON parameter, so the
//! statements have one shape (one cached plan) whatever the number of heads.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row};

use super::{
    Backend, Event, Head, REQUEST_COLUMNS, RequestRecord, Store, StoreError, event_from_row, request_from_row,
};
use crate::domain::RequestId;

/// A claimed head's request, and its events from the head's row on with the last state event
/// before it (what `Store::events_from` reads).
pub type Loaded = (RequestRecord, Vec<Event>);

impl Store {
    /// The requests and events of `heads`, by request id; a request that is gone is absent.
    pub async fn load_heads(&self, heads: &[Head]) -> Result<HashMap<RequestId, Loaded>, StoreError> {
        if heads.is_empty() {
            return Ok(HashMap::new());
        }
        let json = |v: serde_json::Value| v.to_string();
        let ids = json(heads.iter().map(|h| h.request_id.as_str()).collect());
        let pairs = json(
            heads
                .iter()
                .map(|h| serde_json::json!([h.request_id.as_str(), h.seq]))
                .collect(),
        );
        let (requests, events, from_heads) = match self.backend() {
            Backend::Sqlite => (SQLITE_REQUESTS, SQLITE_EVENTS, SQLITE_EVENTS_FROM_HEADS),
            Backend::Postgres => (POSTGRES_REQUESTS, POSTGRES_EVENTS, POSTGRES_EVENTS_FROM_HEADS),
        };
        let requests = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests {requests}"
        )))
        .bind(ids)
        .fetch_all(self.pool())
        .await?;
        let events = sqlx::query(AssertSqlSafe(format!("{events} {from_heads}")))
            .bind(pairs)
            .fetch_all(self.pool())
            .await?;
        let mut loaded: HashMap<RequestId, Loaded> = requests
            .iter()
            .map(|r| request_from_row(r).map(|r| (r.id.clone(), (r, Vec::new()))))
            .collect::<Result<_, _>>()?;
        for row in &events {
            let id: String = row.try_get("request_id")?;
            let Some(id) = RequestId::parse(&id) else {
                return Err(StoreError::Corrupt(format!("bad request id {id:?} in events")));
            };
            if let Some((_, events)) = loaded.get_mut(&id) {
                events.push(event_from_row(&id, row)?);
            }
        }
        Ok(loaded)
    }
}

const SQLITE_REQUESTS: &str = "WHERE id IN (SELECT value FROM json_each($1))";
const POSTGRES_REQUESTS: &str = "WHERE id IN (SELECT json_array_elements_text($1::json))";
const SQLITE_EVENTS: &str =
    "WITH h(id, seq) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM jsonb_each($1))";
const POSTGRES_EVENTS: &str =
    "WITH h(id, seq) AS (SELECT x->>0, (x->>1)::bigint FROM json_array_elements($1::json) AS t(x))";
/// Each head's events from its row on, and the last state event before it (the state the
/// thread shows when a later row is posted late). SQLite plans the correlated form as a
/// search of the primary key per head.
const SQLITE_EVENTS_FROM_HEADS: &str = "SELECT e.request_id, e.seq, e.at, e.kind, e.message, e.data \
     FROM h JOIN events e ON e.request_id = h.id \
     WHERE e.seq >= h.seq OR e.seq = (SELECT MAX(s.seq) FROM events s \
       WHERE s.request_id = h.id AND s.seq < h.seq AND s.kind = 'state') \
     ORDER BY e.request_id, e.seq";
/// The same on PostgreSQL, where the `OR` of the correlated form kept the primary key out of
/// the plan and a poll's read fell behind the acks (the bench's posts stalled): each branch
/// is its own index range per head.
const POSTGRES_EVENTS_FROM_HEADS: &str = "SELECT e.request_id, e.seq, e.at, e.kind, e.message, e.data \
     FROM h CROSS JOIN LATERAL ( \
       (SELECT request_id, seq, at, kind, message, data FROM events \
          WHERE request_id = h.id AND seq >= h.seq) \
       UNION ALL \
       (SELECT request_id, seq, at, kind, message, data FROM events \
          WHERE request_id = h.id AND seq < h.seq AND kind = 'state' ORDER BY seq DESC LIMIT 1)) AS e \
     ORDER BY e.request_id, e.seq";
