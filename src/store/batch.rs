//! Group commit: one task per queue of hot writes stores, in one transaction, whatever arrived
//! while its previous transaction committed (PostgreSQL has a queue for new requests and one
//! for delivery bookkeeping; SQLite one for both, writer.rs).
//!
//! A commit costs the same for one row as for fifty (a WAL flush on PostgreSQL, the single
//! writer's turn on SQLite), so under load most of a write's cost was its own transaction
//! (issue 14). Callers still wait for the commit that holds their write, so nothing is
//! acknowledged before it is durable. A batch that fails is rolled back and each write is
//! tried on its own, so one bad write cannot fail its neighbours and every caller gets its
//! own answer.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{Any, AnyConnection, pool::PoolConnection};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

/// Writes that may wait for their task before the caller itself waits to hand one over.
const QUEUE: usize = 4096;

/// How long a task keeps the writer's connection while writes keep coming (see `Held`).
const HOLD: Duration = Duration::from_millis(20);

/// A kind of write that can share a transaction with others of its kind.
pub(super) trait Batched: Send + Sync + Sized + 'static {
    type Output: Send + 'static;
    /// The most writes one transaction holds.
    const MAX: usize;

    /// All of `jobs` in one transaction on `conn` (the writer's connection the task holds),
    /// committed before this returns. `None` for a job that must be tried on its own after
    /// the commit (a lost idempotency race, say).
    fn batch(
        store: &Store,
        conn: &mut AnyConnection,
        jobs: &[Self],
    ) -> impl Future<Output = Result<Vec<Option<Self::Output>>, StoreError>> + Send;

    /// One job in its own transaction.
    fn one(store: &Store, job: &Self) -> impl Future<Output = Result<Self::Output, StoreError>> + Send;

    /// Which of (at most [`KINDS`]) kinds of write this is, for the counts of /metrics.
    fn kind(&self) -> usize {
        0
    }
}

/// Kinds of write one queue may hold (writer.rs: new requests and bookkeeping).
pub(super) const KINDS: usize = 2;

type Reply<J> = oneshot::Sender<Result<<J as Batched>::Output, StoreError>>;

/// The handle callers use; the task ends when the last handle is dropped.
pub(super) struct Batcher<J: Batched> {
    jobs: mpsc::Sender<(J, Reply<J>)>,
    stats: Arc<Stats>,
}

impl<J: Batched> Clone for Batcher<J> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// For each kind of write: transactions committed by a task that held one, and the writes
/// they held, for /metrics.
#[derive(Default)]
struct Stats {
    commits: [AtomicU64; KINDS],
    writes: [AtomicU64; KINDS],
}

impl<J: Batched> Batcher<J> {
    /// Starts the task on `store`, which must not itself batch (it is the task's own path
    /// to the database).
    pub(super) fn start(store: Store) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        tokio::spawn(run::<J>(store, rx, stats.clone()));
        Self { jobs, stats }
    }

    /// Hands `job` to the task and waits for the commit that holds it.
    pub(super) async fn write(&self, job: J) -> Result<J::Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send((job, reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// (transactions committed, writes they held) of writes of `kind`.
    pub(super) fn stats(&self, kind: usize) -> (u64, u64) {
        let at = |counts: &[AtomicU64; KINDS]| counts.get(kind).map_or(0, |c| c.load(Ordering::Relaxed));
        (at(&self.stats.commits), at(&self.stats.writes))
    }
}

impl Stats {
    /// A committed batch: one commit for each kind it held, and its writes that went in it.
    fn count<J: Batched, O>(&self, jobs: &[J], results: &[Option<O>]) {
        let mut writes = [0; KINDS];
        let mut held = [false; KINDS];
        for (job, done) in jobs.iter().zip(results) {
            let kind = job.kind().min(KINDS - 1);
            held[kind] = true;
            writes[kind] += u64::from(done.is_some());
        }
        for kind in 0..KINDS {
            if held[kind] {
                self.commits[kind].fetch_add(1, Ordering::Relaxed);
                self.writes[kind].fetch_add(writes[kind], Ordering::Relaxed);
            }
        }
    }
}

/// The writer's connection, kept by a task from one batch to the next while writes keep
/// coming. sqlx pings a connection each time it goes back to the pool (and, on PostgreSQL,
/// before handing it out): a hand-over to SQLite's thread or a round trip to the server for
/// every group commit, beside the commit's own (issue 14). The task gives it back when its
/// queue is empty, after [`HOLD`] (SQLite's writer pool has one connection, which other
/// writes wait for), after a failed batch (the pool's ping then finds out whether it is
/// still good), and before writing anything on its own (which takes a connection itself).
#[derive(Default)]
struct Held(Option<(PoolConnection<Any>, Instant)>);

impl Held {
    async fn get(&mut self, store: &Store) -> Result<&mut AnyConnection, StoreError> {
        if self.0.as_ref().is_some_and(|(_, since)| since.elapsed() > HOLD) {
            self.0 = None;
        }
        if self.0.is_none() {
            self.0 = Some((store.writer().acquire().await?, Instant::now()));
        }
        match &mut self.0 {
            Some((conn, _)) => Ok(&mut **conn),
            None => Err(StoreError::Closed),
        }
    }

    fn release(&mut self) {
        self.0 = None;
    }
}

async fn run<J: Batched>(store: Store, mut rx: mpsc::Receiver<(J, Reply<J>)>, stats: Arc<Stats>) {
    let mut batch = Vec::with_capacity(J::MAX);
    let mut held = Held::default();
    while rx.recv_many(&mut batch, J::MAX).await > 0 {
        let (jobs, replies): (Vec<J>, Vec<Reply<J>>) = std::mem::take(&mut batch).into_iter().unzip();
        let done = match held.get(&store).await {
            Ok(conn) => J::batch(&store, conn, &jobs).await,
            Err(e) => Err(e),
        };
        let results = match done {
            Ok(results) => {
                stats.count(&jobs, &results);
                results
            }
            Err(e) => {
                if jobs.len() > 1 {
                    tracing::debug!(writes = jobs.len(), error = %e, "group commit failed; writing one by one");
                }
                jobs.iter().map(|_| None).collect()
            }
        };
        if rx.is_empty() || results.iter().any(Option::is_none) {
            held.release();
        }
        for ((job, reply), done) in jobs.iter().zip(replies).zip(results) {
            let answer = match done {
                Some(out) => Ok(out),
                None => J::one(&store, job).await,
            };
            // The caller may have gone (its client hung up); the write stands either way.
            let _ = reply.send(answer);
        }
    }
}
