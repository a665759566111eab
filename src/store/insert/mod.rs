//! New requests, stored by group commit (see batch.rs).
//!
//! Every chat command is acknowledged only after its request, first events, delivery rows
//! and audit row are committed. A batch of requests is one multi-row `INSERT` per table and
//! one commit, instead of eight statements and a commit each; on PostgreSQL the whole batch
//! is one statement (postgres.rs). A request that another with the same idempotency key beat
//! (in the same batch or before) is looked up after the commit, which is what makes a
//! retried command return the request it first created.

mod postgres;

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use super::{REQUEST_COLUMNS, Store, StoreError, batch::Batched, outbox, request_from_row};
use crate::{
    domain::{RequestId, now_ms, ordered_token},
    events::EventData,
    store::{Actor, Event, EventKind, NewRequest, RequestRecord},
};

/// What `insert_request` returns: the stored request, whether this call created it, and the
/// events stored with it.
pub(super) type Inserted = (RequestRecord, bool, Vec<Event>);

/// A request waiting for its group commit.
pub(super) struct NewJob {
    new: NewRequest,
    who: String,
    surface: String,
}

impl NewJob {
    pub(super) fn new(new: &NewRequest, actor: Actor<'_>) -> Self {
        Self {
            new: new.clone(),
            who: actor.who.to_owned(),
            surface: actor.surface.to_owned(),
        }
    }
}

impl Batched for NewJob {
    type Output = Inserted;
    /// 18 bound values a request: well under SQLite's and PostgreSQL's limits.
    const MAX: usize = 64;

    async fn batch(store: &Store, jobs: &[Self]) -> Result<Vec<Option<Inserted>>, StoreError> {
        insert_batch(store, jobs).await
    }

    /// A batch of one; a request whose idempotency key was taken is the one that took it.
    async fn one(store: &Store, job: &Self) -> Result<Inserted, StoreError> {
        match insert_batch(store, std::slice::from_ref(job)).await?.pop().flatten() {
            Some(stored) => Ok(stored),
            None => store.existing(&job.new).await.map(|r| (r, false, Vec::new())),
        }
    }
}

/// One job's request as bound values, serialized once.
struct Prepared {
    id: RequestId,
    args: String,
    approval: Option<String>,
    groups: String,
    surface_data: Option<String>,
    events: i64,
}

impl Prepared {
    fn new(new: &NewRequest) -> Result<Self, StoreError> {
        let json = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        Ok(Self {
            id: RequestId::generate(),
            args: serde_json::to_string(&new.args).map_err(json)?,
            approval: new
                .approval
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(json)?,
            groups: serde_json::to_string(&new.requester_groups).map_err(json)?,
            surface_data: new.surface_data.as_ref().map(ToString::to_string),
            events: if new.prompt.is_some() { 2 } else { 1 },
        })
    }
}

/// `($1, $2, …), (…)` for `rows` rows of `cols` values.
fn values(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The batch in one transaction. `None` for a request that was not inserted because one with
/// its idempotency key exists (the caller looks it up after the commit).
async fn insert_batch(store: &Store, jobs: &[NewJob]) -> Result<Vec<Option<Inserted>>, StoreError> {
    if store.backend() == super::Backend::Postgres {
        return postgres::insert_batch(store, jobs).await;
    }
    let now = now_ms();
    let mut tx = store.begin().await?;
    let mut stored = Vec::with_capacity(jobs.len());
    for chunk in chunks(jobs) {
        stored.extend(insert_chunk(&mut tx, chunk, now).await?);
    }
    tx.commit().await?;
    Ok(stored)
}

/// `jobs` cut into runs whose lengths are powers of two (13 = 8 + 4 + 1). A multi-row
/// statement is prepared once per number of rows and kept in the connection's statement
/// cache; batches of any size from 1 to 64 would be 64 shapes per table, more than the
/// cache holds, so every batch would be parsed and planned again.
fn chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = 1 << rest.len().ilog2();
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

async fn insert_chunk(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    jobs: &[NewJob],
    now: i64,
) -> Result<Vec<Option<Inserted>>, StoreError> {
    let prepared = jobs
        .iter()
        .map(|j| Prepared::new(&j.new))
        .collect::<Result<Vec<_>, _>>()?;
    let records = insert_requests(tx, jobs, &prepared, now).await?;
    let stored = matched(&prepared, all_first_events(jobs, &prepared, now), records);
    let events: Vec<&Event> = stored.iter().flatten().flat_map(|(_, events)| events).collect();
    insert_events(tx, &events).await?;
    insert_audit(tx, jobs, &stored, now).await?;
    Ok(stored
        .into_iter()
        .map(|s| s.map(|(record, events)| (record, true, events)))
        .collect())
}

/// Each job's stored request with its first events, in the jobs' order; `None` for a job
/// whose request the `INSERT … ON CONFLICT DO NOTHING` did not return (its key was taken).
fn matched(
    prepared: &[Prepared],
    events: Vec<Vec<Event>>,
    records: Vec<RequestRecord>,
) -> Vec<Option<(RequestRecord, Vec<Event>)>> {
    let mut inserted: HashMap<String, RequestRecord> =
        records.into_iter().map(|r| (r.id.as_str().to_owned(), r)).collect();
    prepared
        .iter()
        .zip(events)
        .map(|(p, events)| inserted.remove(p.id.as_str()).map(|record| (record, events)))
        .collect()
}

/// The events each job's request starts with, in the jobs' order.
fn all_first_events(jobs: &[NewJob], prepared: &[Prepared], now: i64) -> Vec<Vec<Event>> {
    jobs.iter()
        .zip(prepared)
        .map(|(job, p)| first_events(&job.new, &p.id, now))
        .collect()
}

async fn insert_requests(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    jobs: &[NewJob],
    prepared: &[Prepared],
    now: i64,
) -> Result<Vec<RequestRecord>, StoreError> {
    let sql = format!(
        "INSERT INTO requests (id, command, action, text, args, state, requester, surface, channel, thread, surface_data, \
         idempotency_key, approval, approval_expires_at, created_at, updated_at, requester_groups, event_seq) \
         VALUES {} ON CONFLICT DO NOTHING RETURNING {REQUEST_COLUMNS}",
        values(jobs.len(), 18)
    );
    // Only placeholders are formatted in; every value is bound.
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (job, p) in jobs.iter().zip(prepared) {
        let new = &job.new;
        q = q
            .bind(p.id.as_str())
            .bind(&new.command)
            .bind(&new.action)
            .bind(&new.text)
            .bind(&p.args)
            .bind(new.state.as_str())
            .bind(&new.requester)
            .bind(new.surface.as_str())
            .bind(&new.channel)
            .bind(&new.thread)
            .bind(&p.surface_data)
            .bind(&new.idempotency_key)
            .bind(&p.approval)
            .bind(new.approval_expires_at)
            .bind(now)
            .bind(now)
            .bind(&p.groups)
            .bind(p.events);
    }
    let rows = q.fetch_all(&mut **tx).await?;
    rows.iter().map(request_from_row).collect()
}

/// The events a new request starts with: its state, and the approval prompt when it has one.
fn first_events(new: &NewRequest, id: &RequestId, now: i64) -> Vec<Event> {
    let state = Event {
        request_id: id.clone(),
        seq: 1,
        at: now,
        kind: EventKind::State,
        message: new.state.as_str().to_owned(),
        data: EventData::state(new.state, None, None),
    };
    let prompt = new.prompt.as_ref().map(|(message, data)| Event {
        request_id: id.clone(),
        seq: 2,
        at: now,
        kind: EventKind::Approval,
        message: message.clone(),
        data: EventData::ApprovalRequested(data.clone()),
    });
    std::iter::once(state).chain(prompt).collect()
}

/// The batch's events in one statement (their delivery rows go in with the audit rows).
async fn insert_events(tx: &mut sqlx::Transaction<'static, sqlx::Any>, events: &[&Event]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO events (request_id, seq, at, kind, message, data) VALUES {}",
        values(events.len(), 6)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for e in events {
        q = q
            .bind(e.request_id.as_str())
            .bind(e.seq)
            .bind(e.at)
            .bind(e.kind.as_str())
            .bind(&e.message)
            .bind(Some(serialize(&e.data)?));
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// One `submit` audit row per stored request, and the chat requests' delivery rows.
async fn insert_audit(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    jobs: &[NewJob],
    stored: &[Option<(RequestRecord, Vec<Event>)>],
    now: i64,
) -> Result<(), StoreError> {
    let rows: Vec<(&NewJob, &RequestRecord, &[Event])> = jobs
        .iter()
        .zip(stored)
        .filter_map(|(job, s)| s.as_ref().map(|(r, e)| (job, r, e.as_slice())))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO audit (id, at, actor, surface, request_id, action, from_state, to_state, detail) VALUES {}",
        values(rows.len(), 9)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (job, record, _) in &rows {
        q = q
            .bind(ordered_token(8))
            .bind(now)
            .bind(&job.who)
            .bind(&job.surface)
            .bind(record.id.as_str())
            .bind("submit")
            .bind(None::<String>)
            .bind(record.state.as_str())
            .bind(&job.new.text);
    }
    q.execute(&mut **tx).await?;
    let deliveries: Vec<(&RequestRecord, &Event)> = rows
        .iter()
        .filter(|(_, r, _)| outbox::delivers(r.surface))
        .flat_map(|(_, r, events)| events.iter().map(move |e| (*r, e)))
        .collect();
    outbox::insert_many_tx(tx, &deliveries, now).await
}

impl Store {
    /// The request the same requester stored under `new`'s idempotency key on its surface.
    async fn existing(&self, new: &NewRequest) -> Result<RequestRecord, StoreError> {
        let key = new.idempotency_key.as_deref().unwrap_or_default();
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE surface = $1 AND requester = $2 AND idempotency_key = $3"
        )))
        .bind(new.surface.as_str())
        .bind(&new.requester)
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        request_from_row(&row)
    }
}

/// An event's data as stored in the `data` column.
pub(super) fn serialize(data: &EventData) -> Result<String, StoreError> {
    serde_json::to_string(data).map_err(|e| StoreError::Corrupt(format!("event data: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_are_cut_into_powers_of_two_largest_first() {
        let items: Vec<u8> = (0..13).collect();
        let sizes: Vec<usize> = super::chunks(&items).map(<[u8]>::len).collect();
        assert_eq!(sizes, [8, 4, 1]);
        let joined: Vec<u8> = super::chunks(&items).flatten().copied().collect();
        assert_eq!(joined, items);
        assert_eq!(super::chunks::<u8>(&[]).count(), 0);
        assert_eq!(super::chunks(&[0u8; 64]).count(), 1);
    }
}
