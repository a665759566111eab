//! SQLite's one queue: new requests and delivery bookkeeping in one transaction.
//!
//! SQLite has one writer. With a group-commit queue for each (insert/mod.rs,
//! bookkeeping.rs) the writer's connection went to their transactions in turn: at the
//! bench's load about 1,500 transactions a second, each mostly hand-overs between threads,
//! with the connection busy all the time and the CPU not (issue 14). Here one task takes
//! whatever of both arrived while the last commit ran and writes it as one query, `BEGIN
//! IMMEDIATE` to `COMMIT` (one_trip.rs): a new request waits for at most one transaction
//! ahead of its own, and the posts' writes cost the acknowledgements no transaction of their
//! own. PostgreSQL, whose writers do not queue for one connection, keeps the two queues.
//!
//! Nothing about a write's answer changes: the statements are those of the two queues, each
//! still its own compare-and-set, and a batch with a rarer bookkeeping write (one that goes
//! one statement at a time) is written as the two queues would, new requests first.

use std::collections::HashSet;

use sqlx::{AnyConnection, AssertSqlSafe};

use super::{
    Backend, Store, StoreError,
    batch::Batched,
    bookkeeping::{self, Bookkeeping, Grouped},
    insert::{self, Inserted, NewJob, Plan},
    one_trip::one_trip,
};

pub(super) enum Write {
    Insert(Box<NewJob>),
    Book(Bookkeeping),
}

pub(super) enum Written {
    Inserted(Box<Inserted>),
    Changed(u64),
}

impl Written {
    pub(super) fn inserted(self) -> Result<Inserted, StoreError> {
        match self {
            Written::Inserted(done) => Ok(*done),
            Written::Changed(_) => Err(StoreError::Corrupt("a new request answered as bookkeeping".into())),
        }
    }

    pub(super) fn changed(self) -> Result<u64, StoreError> {
        match self {
            Written::Changed(n) => Ok(n),
            Written::Inserted(_) => Err(StoreError::Corrupt("bookkeeping answered as a new request".into())),
        }
    }
}

impl Batched for Write {
    type Output = Written;
    const MAX: usize = NewJob::MAX + Bookkeeping::MAX;

    fn kind(&self) -> usize {
        match self {
            Write::Insert(_) => 0,
            Write::Book(_) => 1,
        }
    }

    async fn batch(_: &Store, conn: &mut AnyConnection, jobs: &[Self]) -> Result<Vec<Option<Written>>, StoreError> {
        let (mut at, mut inserts, mut book_jobs) = (Vec::new(), Vec::new(), Vec::new());
        for (i, job) in jobs.iter().enumerate() {
            match job {
                Write::Insert(new) => {
                    at.push(i);
                    inserts.push(&**new);
                }
                Write::Book(b) => book_jobs.push((i, b)),
            }
        }
        let books = Grouped::of(book_jobs.iter().copied());
        if !books.multi_row() {
            return apart(conn, jobs.len(), (&at, &inserts), &book_jobs).await;
        }
        let plan = Plan::new(&inserts)?;
        let (swaps, claims, marks) = books.rows();
        let query = match (inserts.is_empty(), books.is_empty()) {
            (false, true) => plan.bind(insert::sqlite::transaction()),
            (true, _) => sqlx::query(AssertSqlSafe(bookkeeping::transaction()))
                .bind(swaps)
                .bind(claims)
                .bind(marks),
            (false, false) => plan.bind(both()).bind(swaps).bind(claims).bind(marks),
        };
        let changed = bookkeeping::tagged(&one_trip(conn, query).await?)?;
        let inserted: HashSet<String> = changed
            .keys()
            .filter(|(tag, _)| tag == "insert")
            .map(|(_, id)| id.clone())
            .collect();
        let mut out: Vec<Option<Written>> = books
            .finish(&changed, jobs.len())
            .into_iter()
            .map(|n| Some(Written::Changed(n)))
            .collect();
        for (i, done) in at.into_iter().zip(plan.finish(&inserts, &inserted)) {
            out[i] = done.map(|d| Written::Inserted(Box::new(d)));
        }
        Ok(out)
    }

    async fn one(store: &Store, job: &Self) -> Result<Written, StoreError> {
        Ok(match job {
            Write::Insert(new) => Written::Inserted(Box::new(NewJob::one(store, new).await?)),
            Write::Book(b) => Written::Changed(Bookkeeping::one(store, b).await?),
        })
    }
}

/// A batch with a write that goes one statement at a time: the new requests' transaction,
/// then the bookkeeping's. When the second fails, its writes are tried alone after (`None`);
/// the new requests stand.
/// (`n` writes; the new requests with their places in the batch; the bookkeeping with theirs)
async fn apart(
    conn: &mut AnyConnection,
    n: usize,
    (at, inserts): (&[usize], &[&NewJob]),
    books: &[(usize, &Bookkeeping)],
) -> Result<Vec<Option<Written>>, StoreError> {
    let mut out: Vec<Option<Written>> = (0..n).map(|_| None).collect();
    if !inserts.is_empty() {
        for (&i, done) in at
            .iter()
            .zip(insert::insert_batch(Backend::Sqlite, conn, inserts).await?)
        {
            out[i] = done.map(|d| Written::Inserted(Box::new(d)));
        }
    }
    let refs: Vec<&Bookkeeping> = books.iter().map(|(_, b)| *b).collect();
    match bookkeeping::one_by_one(Backend::Sqlite, conn, &refs).await {
        Ok(done) => {
            for ((i, _), n) in books.iter().zip(done) {
                out[*i] = Some(Written::Changed(n));
            }
        }
        Err(e) => tracing::debug!(error = %e, "bookkeeping batch failed; writing one by one"),
    }
    Ok(out)
}

/// New requests (`$1`-`$4`) and bookkeeping (`$5`-`$7`) in one transaction.
fn both() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "BEGIN IMMEDIATE; {}; {}; COMMIT;",
            insert::sqlite::statements(),
            bookkeeping::statements(5)
        )
    });
    &SQL
}
