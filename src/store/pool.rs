//! Opening the store: the SQLite file and its journal mode, and the pool's per-connection
//! settings for each backend.

use std::time::Duration;

use sqlx::{AssertSqlSafe, any::AnyPoolOptions};

use super::{Backend, StoreError, checkpoint};

/// Creates a SQLite file's directory and puts the file in WAL mode before the pool opens; a
/// no-op for an in-memory database.
pub(super) async fn prepare_sqlite_file(url: &str) -> Result<(), StoreError> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Dir(dir.display().to_string(), e))?;
    }
    // WAL lets readers (SSE streams, the API) proceed while the worker writes. It is a
    // property of the file, set once, and needs a lock no busy-timeout can wait for,
    // so it is set here on a single connection before the pool opens.
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut conn).await?;
    sqlx::Connection::close(conn).await?;
    Ok(())
}

pub(super) fn pool_options(backend: Backend, max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // A SQLite connection is a file handle in this process: it cannot go stale, so the
        // ping sqlx sends before handing one out by default is only a round trip to its
        // worker thread, one more for every group commit (issue 14).
        .test_before_acquire(backend != Backend::Sqlite)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    // A multi-row insert inside a transaction keeps a statement journal; in
                    // memory it is not a temporary file written per group commit (issue 14).
                    sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *conn).await?;
                    // Checkpoints run in the background (checkpoint.rs); this is the backstop.
                    sqlx::query(AssertSqlSafe(format!(
                        "PRAGMA wal_autocheckpoint = {}",
                        checkpoint::BACKSTOP_PAGES
                    )))
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            })
        })
}
