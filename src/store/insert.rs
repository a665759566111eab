//! New requests, stored by group commit.
//!
//! Every chat command is acknowledged only after its request, first events, delivery rows
//! and audit row are committed. One transaction of eight statements per command made that
//! write 15-20 times the cost of the rest of the request (issue 14). So a single task takes
//! every request that arrives while the previous batch commits and stores them together: one
//! multi-row `INSERT` per table and one commit for up to [`MAX_BATCH`] requests. Each caller
//! still waits for the commit that holds its own request, so an acknowledgement never runs
//! ahead of durability.
//!
//! A batch that fails (a constraint, a serialization error, a lost connection) is rolled
//! back and its requests are stored one by one, so one bad request cannot fail its
//! neighbours and each caller gets its own error. A request that another with the same
//! idempotency key beat is looked up the same way, which is what makes a retried command
//! return the request it first created.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use sqlx::AssertSqlSafe;
use tokio::sync::{mpsc, oneshot};

use super::{REQUEST_COLUMNS, Store, StoreError, append_event_tx, audit_tx, outbox, request_from_row};
use crate::{
    domain::{RequestId, new_token, now_ms},
    store::{Actor, Event, EventKind, NewRequest, RequestRecord},
};

/// The most requests one transaction stores (18 bound values each, well under SQLite's and
/// PostgreSQL's limits on bound parameters).
pub(super) const MAX_BATCH: usize = 64;
/// Requests that may wait for the batch task before `insert_request` itself waits.
const QUEUE: usize = 4096;

/// What `insert_request` returns: the stored request, whether this call created it, and the
/// events stored with it.
pub(super) type Inserted = (RequestRecord, bool, Vec<Event>);

struct Job {
    new: NewRequest,
    who: String,
    surface: String,
    done: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// The handle callers use; the batch task ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    stats: Arc<Stats>,
}

/// Batches committed and the requests they held, for /metrics.
#[derive(Default)]
struct Stats {
    commits: AtomicU64,
    requests: AtomicU64,
}

impl GroupCommit {
    /// Starts the batch task on `store`, which must not itself group (it is the task's own
    /// path to the database).
    pub(super) fn start(store: Store) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(store, rx, stats.clone()));
        Self { jobs, stats }
    }

    /// (transactions committed by the batch task, requests they stored).
    pub(super) fn stats(&self) -> (u64, u64) {
        (
            self.stats.commits.load(Ordering::Relaxed),
            self.stats.requests.load(Ordering::Relaxed),
        )
    }

    pub(super) async fn insert(&self, new: &NewRequest, actor: Actor<'_>) -> Result<Inserted, StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job {
            new: new.clone(),
            who: actor.who.to_owned(),
            surface: actor.surface.to_owned(),
            done,
        };
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, stats: Arc<Stats>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&store, std::mem::take(&mut batch), &stats).await;
    }
}

/// Stores `jobs` in one transaction and answers each; on failure, one by one.
async fn commit(store: &Store, jobs: Vec<Job>, stats: &Stats) {
    let results = match insert_batch(store, &jobs).await {
        Ok(results) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            let n = results.iter().flatten().count();
            stats.requests.fetch_add(n as u64, Ordering::Relaxed);
            results
        }
        Err(e) => {
            if jobs.len() > 1 {
                tracing::debug!(requests = jobs.len(), error = %e, "group commit failed; storing one by one");
            }
            vec![None; jobs.len()]
        }
    };
    for (job, stored) in jobs.into_iter().zip(results) {
        let answer = match stored {
            Some(stored) => Ok(stored),
            None => store.insert_one(&job.new, job.actor()).await,
        };
        // The caller may have gone (its client hung up); the request is stored either way.
        let _ = job.done.send(answer);
    }
}

impl Job {
    fn actor(&self) -> Actor<'_> {
        Actor {
            who: &self.who,
            surface: &self.surface,
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
async fn insert_batch(store: &Store, jobs: &[Job]) -> Result<Vec<Option<Inserted>>, StoreError> {
    let now = now_ms();
    let prepared = jobs
        .iter()
        .map(|j| Prepared::new(&j.new))
        .collect::<Result<Vec<_>, _>>()?;
    let mut tx = store.begin().await?;
    let mut inserted: HashMap<String, RequestRecord> = insert_requests(&mut tx, jobs, &prepared, now)
        .await?
        .into_iter()
        .map(|r| (r.id.as_str().to_owned(), r))
        .collect();
    let mut stored = Vec::with_capacity(jobs.len());
    for (job, p) in jobs.iter().zip(&prepared) {
        stored.push(
            inserted
                .remove(p.id.as_str())
                .map(|record| (record, first_events(&job.new, &p.id, now))),
        );
    }
    let events: Vec<&Event> = stored.iter().flatten().flat_map(|(_, events)| events).collect();
    insert_events(&mut tx, &events).await?;
    insert_audit(&mut tx, jobs, &stored, now).await?;
    tx.commit().await?;
    Ok(stored
        .into_iter()
        .map(|s| s.map(|(record, events)| (record, true, events)))
        .collect())
}

async fn insert_requests(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    jobs: &[Job],
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
        data: Some(serde_json::json!({ "state": new.state.as_str() })),
    };
    let prompt = new.prompt.as_ref().map(|(message, data)| Event {
        request_id: id.clone(),
        seq: 2,
        at: now,
        kind: EventKind::Approval,
        message: message.clone(),
        data: Some(data.clone()),
    });
    std::iter::once(state).chain(prompt).collect()
}

/// The events, and a delivery row for each event of a chat request.
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
            .bind(e.data.as_ref().map(ToString::to_string));
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// One `submit` audit row per stored request, and the chat requests' delivery rows.
async fn insert_audit(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    jobs: &[Job],
    stored: &[Option<(RequestRecord, Vec<Event>)>],
    now: i64,
) -> Result<(), StoreError> {
    let rows: Vec<(&Job, &RequestRecord, &[Event])> = jobs
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
            .bind(new_token(16))
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
    /// One request in its own transaction: the path when a batch failed, and for a request
    /// whose idempotency key was taken.
    pub(super) async fn insert_one(&self, new: &NewRequest, actor: Actor<'_>) -> Result<Inserted, StoreError> {
        let now = now_ms();
        let p = Prepared::new(new)?;
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO requests (id, command, action, text, args, state, requester, surface, channel, thread, surface_data, \
             idempotency_key, approval, approval_expires_at, created_at, updated_at, requester_groups) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $15, $11, $12, $13, $14, $14, $16) ON CONFLICT DO NOTHING RETURNING {REQUEST_COLUMNS}"
        )))
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
        .bind(&new.idempotency_key)
        .bind(&p.approval)
        .bind(new.approval_expires_at)
        .bind(now)
        .bind(&p.surface_data)
        .bind(&p.groups)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inserted) = inserted else {
            tx.rollback().await?;
            return self.existing(new).await.map(|r| (r, false, Vec::new()));
        };
        let id = &p.id;
        let data = serde_json::json!({ "state": new.state.as_str() });
        let mut events =
            vec![append_event_tx(&mut tx, id, EventKind::State, new.state.as_str(), Some(data), now).await?];
        if let Some((message, data)) = &new.prompt {
            events.push(append_event_tx(&mut tx, id, EventKind::Approval, message, Some(data.clone()), now).await?);
        }
        audit_tx(
            &mut tx,
            actor,
            Some(id),
            "submit",
            None,
            Some(new.state),
            Some(&new.text),
            now,
        )
        .await?;
        tx.commit().await?;
        // As inserted: the events just added moved only the event counter.
        Ok((request_from_row(&inserted)?, true, events))
    }

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
