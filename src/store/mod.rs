//! Durable state: requests, approvals, events and the audit log, in SQLite or PostgreSQL.
//!
//! One code path serves both backends through sqlx's Any driver; the SQL is the portable
//! subset (`$n` parameters, `ON CONFLICT DO NOTHING`, `RETURNING`); the one exception is the
//! hottest write, a batch of new requests, which PostgreSQL takes as a single statement
//! (insert/postgres.rs). Every state change is a
//! compare-and-set (`UPDATE … WHERE state IN (…)`) inside a transaction that also writes the
//! event and the audit row, so the three never disagree.

mod audit;
mod batch;
mod bookkeeping;
mod checkpoint;
mod decisions;
mod delivery_writes;
mod events;
mod insert;
mod one_trip;
mod outbox;
mod outbox_reads;
mod page_room;
mod pool;
mod records;
mod replicas;
mod rows;
mod statistics;
mod surface_writes;
mod sweeps;
mod transitions;
mod writer;

use std::sync::{Arc, Once};

use sqlx::{AnyPool, AssertSqlSafe, Row};

pub use outbox::{CLAIM_HEADS, DeliveryRecord, Head, Lease, delivers};
pub use outbox_reads::Loaded;
pub use records::*;
pub use replicas::{ReplicaError, ReplicaLock, listen_for_work};
pub use sweeps::{EXPIRED_APPROVALS, RecordRef};

use audit::audit_tx;
use events::append_event_tx;
use pool::{pool_options, prepare_sqlite_file};
use rows::{event_from_row, request_from_row};

use crate::domain::RequestId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the SQLite directory {0}: {1}")]
    Dir(String, std::io::Error),
    #[error("stored row is unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where this store's writes go: the pool itself on PostgreSQL; on SQLite, which has one
    /// writer at a time, a pool of one connection, so writers queue in order here instead of
    /// sleeping in SQLite's busy handler (1, 2, 5, 10… ms) and retrying.
    writer: AnyPool,
    backend: Backend,
    /// The group-commit tasks (see batch.rs); `None` in the tasks' own copy.
    group: Option<Groups>,
    /// When this store refreshes PostgreSQL's planner statistics (statistics.rs).
    statistics: Arc<statistics::Statistics>,
}

#[derive(Clone)]
enum Groups {
    /// SQLite: new requests and bookkeeping share its one writer's transactions (writer.rs).
    One(batch::Batcher<writer::Write>),
    /// PostgreSQL: a queue for new requests, and one for delivery bookkeeping and
    /// conversation state (see bookkeeping.rs).
    Two {
        requests: batch::Batcher<insert::NewJob>,
        bookkeeping: batch::Batcher<bookkeeping::Bookkeeping>,
    },
}

impl Groups {
    fn start(store: &Store) -> Self {
        match store.backend {
            Backend::Sqlite => Groups::One(batch::Batcher::start(store.clone())),
            Backend::Postgres => Groups::Two {
                requests: batch::Batcher::start(store.clone()),
                bookkeeping: batch::Batcher::start(store.clone()),
            },
        }
    }

    /// (commits, writes) of new requests (kind 0) or bookkeeping (kind 1).
    fn stats(&self, kind: usize) -> (u64, u64) {
        match (self, kind) {
            (Groups::One(one), kind) => one.stats(kind),
            (Groups::Two { requests, .. }, 0) => requests.stats(0),
            (Groups::Two { bookkeeping, .. }, _) => bookkeeping.stats(0),
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const REQUEST_COLUMNS: &str = "id, command, action, text, args, state, requester, requester_groups, surface, channel, thread, surface_data, \
     approval, approval_expires_at, created_at, updated_at, started_at, finished_at, worker, lease_until, attempts, outcome";

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        if backend == Backend::Sqlite {
            prepare_sqlite_file(url).await?;
        }
        let pool = pool_options(backend, max_connections).connect(url).await?;
        let writer = match backend {
            Backend::Sqlite => {
                checkpoint::spawn(pool.clone());
                pool_options(backend, 1).connect(url).await?
            }
            Backend::Postgres => pool.clone(),
        };
        let direct = Self {
            pool,
            writer,
            backend,
            group: None,
            statistics: Arc::default(),
        };
        Ok(Self {
            group: Some(Groups::start(&direct)),
            ..direct
        })
    }

    /// The pool, for feature modules that keep their own tables (proxy links).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        if self.backend == Backend::Postgres {
            page_room::leave_room(&self.pool).await;
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// (group commits, requests they stored) since this store was opened (see insert/mod.rs).
    pub fn group_commits(&self) -> (u64, u64) {
        self.group.as_ref().map_or((0, 0), |g| g.stats(0))
    }

    /// (group commits, statements they ran) of the delivery and conversation-state writes
    /// (see bookkeeping.rs) since this store was opened; a compare-and-set that lost counts.
    pub fn bookkeeping_commits(&self) -> (u64, u64) {
        self.group.as_ref().map_or((0, 0), |g| g.stats(1))
    }

    /// A delivery or conversation-state write, group-committed (see bookkeeping.rs).
    async fn bookkeeping(&self, write: bookkeeping::Bookkeeping) -> Result<u64, StoreError> {
        match &self.group {
            Some(Groups::One(one)) => one.write(writer::Write::Book(write)).await?.changed(),
            Some(Groups::Two { bookkeeping, .. }) => bookkeeping.write(write).await,
            None => <bookkeeping::Bookkeeping as batch::Batched>::one(self, &write).await,
        }
    }

    /// The pool writes go through (see `writer`).
    fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// SQLite takes the write lock up front so a transaction never fails half-way on an
    /// upgrade; PostgreSQL's row locks do the same job.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }

    /// Stores a request, or returns the one the same requester already stored under the same
    /// idempotency key on the same surface (`false` then, and no events). The first events
    /// (the state, and the approval prompt when it needs one) and the audit row go in the same
    /// transaction; they are returned so the caller can announce them without reading back.
    /// Concurrent calls share a transaction (group commit, see insert/mod.rs); each returns once
    /// the commit holding its request is done. With `lease`, the request's first delivery row
    /// is stored claimed by it (see `crate::outbox::handoff`).
    pub async fn insert_request(
        &self,
        new: &NewRequest,
        actor: Actor<'_>,
        lease: Option<&Lease>,
    ) -> Result<(RequestRecord, bool, Vec<Event>), StoreError> {
        let job = insert::NewJob::new(new, actor, lease);
        match &self.group {
            Some(Groups::One(one)) => one.write(writer::Write::Insert(Box::new(job))).await?.inserted(),
            Some(Groups::Two { requests, .. }) => requests.write(job).await,
            None => <insert::NewJob as batch::Batched>::one(self, &job).await,
        }
    }

    pub async fn get(&self, id: &RequestId) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Newest first.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<RequestRecord>, StoreError> {
        let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE 1 = 1");
        let mut n = 0;
        if filter.requester.is_some() {
            n += 1;
            sql.push_str(&format!(" AND requester = ${n}"));
        }
        if !filter.states.is_empty() {
            let ph: Vec<String> = filter
                .states
                .iter()
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            sql.push_str(&format!(" AND state IN ({})", ph.join(", ")));
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${}", n + 1));
        // Only placeholders are formatted in; every value is bound.
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(r) = &filter.requester {
            q = q.bind(r.clone());
        }
        for s in &filter.states {
            q = q.bind(s.as_str());
        }
        let rows = q.bind(filter.limit.clamp(1, 500)).fetch_all(&self.pool).await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Replaces the surface data only if it is still `before` (compare-and-set on the
    /// stored JSON text, which every writer produces with `Value::to_string`); false when
    /// another writer got there first (nothing is changed then).
    pub async fn swap_surface_data(
        &self,
        id: &RequestId,
        before: Option<&serde_json::Value>,
        after: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let swap = surface_writes::SurfaceSwap {
            id: id.clone(),
            before: before.map(ToString::to_string),
            after: after.to_string(),
        };
        self.bookkeeping(bookkeeping::Bookkeeping::Surface(swap))
            .await
            .map(|changed| changed == 1)
    }

    /// Extends this worker's lease; `false` if the request is no longer its to run.
    pub async fn renew_lease(&self, id: &RequestId, worker: &str, until: i64) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE requests SET lease_until = $1 WHERE id = $2 AND state = 'running' AND worker = $3")
            .bind(until)
            .bind(id.as_str())
            .bind(worker)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    pub async fn counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT command, state, COUNT(*) AS n FROM requests GROUP BY command, state ORDER BY command, state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("command")?, r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }
}
