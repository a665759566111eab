//! New requests, stored by group commit (see batch.rs).
//!
//! Every chat command is acknowledged only after its request, first events, delivery rows
//! and audit row are committed. A batch of requests travels as JSON arrays (`rows`): on
//! PostgreSQL the whole batch is one statement (postgres.rs), on SQLite one statement per
//! table in one transaction (sqlite.rs), instead of eight statements and a commit each. A request that another with the same idempotency key beat
//! (in the same batch or before) is looked up after the commit, which is what makes a
//! retried command return the request it first created.

mod postgres;
pub(super) mod sqlite;

use std::collections::HashSet;

use serde::Serialize;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, any::AnyArguments, query::Query};

use super::{
    Backend, REQUEST_COLUMNS, Store, StoreError, batch::Batched, one_trip::one_trip, outbox, request_from_row,
};
use crate::{
    domain::{RequestId, now_ms, ordered_token},
    events::EventData,
    store::{Actor, Event, EventKind, Lease, NewRequest, RequestRecord},
};

/// What `insert_request` returns: the stored request, whether this call created it, and the
/// events stored with it.
pub(super) type Inserted = (RequestRecord, bool, Vec<Event>);

/// A request waiting for its group commit.
pub(super) struct NewJob {
    new: NewRequest,
    who: String,
    surface: String,
    /// The claim the first delivery row is stored with, if any.
    lease: Option<Lease>,
}

impl NewJob {
    pub(super) fn new(new: &NewRequest, actor: Actor<'_>, lease: Option<&Lease>) -> Self {
        Self {
            new: new.clone(),
            who: actor.who.to_owned(),
            surface: actor.surface.to_owned(),
            lease: lease.cloned(),
        }
    }
}

impl Batched for NewJob {
    type Output = Inserted;
    /// 18 bound values a request: well under SQLite's and PostgreSQL's limits.
    const MAX: usize = 64;

    async fn batch(
        store: &Store,
        conn: &mut AnyConnection,
        jobs: &[Self],
    ) -> Result<Vec<Option<Inserted>>, StoreError> {
        let done = insert_batch(store.backend(), conn, &jobs.iter().collect::<Vec<_>>()).await?;
        store.inserted(done.iter().flatten().count());
        Ok(done)
    }

    /// A batch of one; a request whose idempotency key was taken is the one that took it.
    async fn one(store: &Store, job: &Self) -> Result<Inserted, StoreError> {
        let mut conn = store.writer().acquire().await?;
        let done = insert_batch(store.backend(), &mut conn, &[job]).await?;
        drop(conn);
        store.inserted(done.iter().flatten().count());
        match done.into_iter().next().flatten() {
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

/// The batch, as one statement (PostgreSQL) or one query holding the whole transaction
/// (SQLite); both read the rows as JSON arrays (`rows`). `None` for a request that was not
/// inserted because one with its idempotency key exists (the caller looks it up after the
/// commit).
pub(super) async fn insert_batch(
    backend: Backend,
    conn: &mut AnyConnection,
    jobs: &[&NewJob],
) -> Result<Vec<Option<Inserted>>, StoreError> {
    let plan = Plan::new(jobs)?;
    let returned = match backend {
        Backend::Postgres => plan.bind(postgres::statement()).fetch_all(conn).await?,
        Backend::Sqlite => one_trip(conn, plan.bind(sqlite::transaction())).await?,
    };
    // The id is the last column: SQLite's rows also carry their statement's tag (writer.rs).
    let inserted = returned
        .iter()
        .map(|r| r.try_get::<String, _>(r.len() - 1))
        .collect::<Result<HashSet<_>, _>>()?;
    Ok(plan.finish(jobs, &inserted))
}

/// A batch's rows, ready to bind: `$1` now, `$2` requests, `$3` events, `$4` audit rows.
pub(super) struct Plan {
    now: i64,
    prepared: Vec<Prepared>,
    events: Vec<Vec<Event>>,
    rows: (String, String, String),
}

impl Plan {
    pub(super) fn new(jobs: &[&NewJob]) -> Result<Self, StoreError> {
        let now = now_ms();
        let prepared = jobs
            .iter()
            .map(|j| Prepared::new(&j.new))
            .collect::<Result<Vec<_>, _>>()?;
        let events = all_first_events(jobs, &prepared, now);
        let rows = rows(jobs, &prepared, &events)?;
        Ok(Self {
            now,
            prepared,
            events,
            rows,
        })
    }

    /// `sql` with the batch's four values bound; the caller binds any after them.
    pub(super) fn bind(&self, sql: &'static str) -> Query<'static, Any, AnyArguments> {
        let (requests, events, audit) = self.rows.clone();
        sqlx::query(AssertSqlSafe(sql))
            .bind(self.now)
            .bind(requests)
            .bind(events)
            .bind(audit)
    }

    /// Each job's answer, given the ids the statement inserted.
    pub(super) fn finish(self, jobs: &[&NewJob], inserted: &HashSet<String>) -> Vec<Option<Inserted>> {
        let now = self.now;
        jobs.iter()
            .zip(self.prepared)
            .zip(self.events)
            .map(|((job, p), events)| {
                inserted
                    .contains(p.id.as_str())
                    .then(|| (stored(&job.new, p, now), true, events))
            })
            .collect()
    }
}

/// The request as the batch stored it: what the `INSERT` wrote, and the columns' defaults
/// for the rest (`tests/group_commit.rs` reads each back and compares). Built here rather
/// than returned by the statement, which turned every column of every row into a value
/// and back (issue 14).
fn stored(new: &NewRequest, p: Prepared, now: i64) -> RequestRecord {
    RequestRecord {
        id: p.id,
        command: new.command.clone(),
        action: new.action.clone(),
        text: new.text.clone(),
        args: new.args.clone(),
        state: new.state,
        requester: new.requester.clone(),
        requester_groups: new.requester_groups.clone(),
        surface: new.surface,
        channel: new.channel.clone(),
        thread: new.thread.clone(),
        surface_data: new.surface_data.clone(),
        approval: new.approval.clone(),
        approval_expires_at: new.approval_expires_at,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        worker: None,
        lease_until: None,
        attempts: 0,
        outcome: None,
    }
}

/// The events each job's request starts with, in the jobs' order.
fn all_first_events(jobs: &[&NewJob], prepared: &[Prepared], now: i64) -> Vec<Vec<Event>> {
    jobs.iter()
        .zip(prepared)
        .map(|(job, p)| first_events(&job.new, &p.id, now))
        .collect()
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

/// A request as the statement reads it (one element of `$2`).
#[derive(Serialize)]
struct RequestRow<'a> {
    id: &'a str,
    command: &'a str,
    action: &'a str,
    text: &'a str,
    args: &'a str,
    state: &'a str,
    requester: &'a str,
    surface: &'a str,
    channel: Option<&'a str>,
    thread: Option<&'a str>,
    surface_data: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    approval: Option<&'a str>,
    approval_expires_at: Option<i64>,
    requester_groups: &'a str,
    event_seq: i64,
}

/// An event, and whether (and claimed by whom) it gets a delivery row (`$3`).
#[derive(Serialize)]
struct EventRow<'a> {
    request_id: &'a str,
    seq: i64,
    kind: &'a str,
    message: &'a str,
    data: String,
    deliver: bool,
    lease_owner: Option<&'a str>,
    lease_until: Option<i64>,
}

/// A `submit` audit row (`$4`).
#[derive(Serialize)]
struct AuditRow<'a> {
    id: String,
    request_id: &'a str,
    actor: &'a str,
    surface: &'a str,
    detail: &'a str,
}

/// The three JSON arrays the statement reads: requests, their first events, audit rows.
/// Written straight from typed rows (no `serde_json::Value` in between: building and
/// dropping those maps was a visible share of the acknowledgement's CPU, issue 14).
fn rows(
    jobs: &[&NewJob],
    prepared: &[Prepared],
    events: &[Vec<Event>],
) -> Result<(String, String, String), StoreError> {
    let mut requests = Vec::with_capacity(jobs.len());
    let mut event_rows = Vec::with_capacity(jobs.len() * 2);
    let mut audit = Vec::with_capacity(jobs.len());
    for ((job, p), events) in jobs.iter().zip(prepared).zip(events) {
        let new = &job.new;
        requests.push(RequestRow {
            id: p.id.as_str(),
            command: &new.command,
            action: &new.action,
            text: &new.text,
            args: &p.args,
            state: new.state.as_str(),
            requester: &new.requester,
            surface: new.surface.as_str(),
            channel: new.channel.as_deref(),
            thread: new.thread.as_deref(),
            surface_data: p.surface_data.as_deref(),
            idempotency_key: new.idempotency_key.as_deref(),
            approval: p.approval.as_deref(),
            approval_expires_at: new.approval_expires_at,
            requester_groups: &p.groups,
            event_seq: p.events,
        });
        let deliver = outbox::delivers(new.surface);
        for e in events {
            // Only the first row is claimed: the rest wait behind it in any case.
            let lease = job.lease.as_ref().filter(|_| deliver && e.seq == 1);
            event_rows.push(EventRow {
                request_id: p.id.as_str(),
                seq: e.seq,
                kind: e.kind.as_str(),
                message: &e.message,
                data: serialize(&e.data)?,
                deliver,
                lease_owner: lease.map(|l| l.owner.as_str()),
                lease_until: lease.map(|l| l.until),
            });
        }
        audit.push(AuditRow {
            id: ordered_token(8),
            request_id: p.id.as_str(),
            actor: &job.who,
            surface: &job.surface,
            detail: &new.text,
        });
    }
    Ok((to_json(&requests)?, to_json(&event_rows)?, to_json(&audit)?))
}

fn to_json<T: Serialize>(rows: &T) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(format!("rows: {e}")))
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
