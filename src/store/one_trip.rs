//! A whole SQLite transaction as one query: `BEGIN IMMEDIATE; …; COMMIT;`.
//!
//! sqlx runs each SQLite connection on its own thread; every statement, `BEGIN` and `COMMIT`
//! included, is a hand-over to that thread and back. On the 2-core machine of issue 14 a
//! hand-over cost 130-300 µs even with the writer idle (waking a thread across cores), more
//! than the statements themselves: a group commit of BEGIN, one query and COMMIT spent most
//! of its time in three of them. sqlx runs the statements of one query string in turn on
//! the connection's thread, so a transaction written as one query is one hand-over.
//!
//! The transaction is then SQLite's, not sqlx's: when a statement fails, this ends it with
//! `ROLLBACK` before the connection goes back to the pool. A call dropped half-way (only at
//! shutdown: the group-commit tasks are never cancelled otherwise) leaves the transaction to
//! SQLite, which rolls it back when the connection closes.

use sqlx::{Any, AnyConnection, any::AnyArguments, query::Query};

use super::StoreError;

/// Runs `query`, whose text is a whole transaction, on the writer's connection `conn`; the
/// rows its statements returned, in order.
pub(super) async fn one_trip<'q>(
    conn: &mut AnyConnection,
    query: Query<'q, Any, AnyArguments>,
) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
    match query.fetch_all(&mut *conn).await {
        Ok(rows) => Ok(rows),
        Err(e) => {
            // "No transaction is active" when BEGIN itself failed: nothing to end.
            if let Err(r) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                tracing::debug!(error = %r, "no transaction to roll back after a failed statement");
            }
            Err(e.into())
        }
    }
}
