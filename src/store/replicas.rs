//! What several replicas on one store need from it.
//!
//! PostgreSQL: replicas wake each other with LISTEN/NOTIFY instead of waiting for their next
//! poll, so a request approved on one replica starts on another at once (the poll stays as
//! the safety net). SQLite is one file on one machine: a second `serve` on the same file would
//! double the work nobody asked it to share, so it is refused with a clear error by an
//! exclusive lock beside the file, released when the first stops (or dies: the kernel drops
//! the lock with the process).

use std::{fs::File, os::fd::AsRawFd, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{Backend, Store, StoreError};

/// The channel replicas notify when work is queued.
const CHANNEL: &str = "deckhand_work";

/// Held while this process serves a SQLite store; dropping it lets another start.
#[derive(Debug)]
pub struct ReplicaLock {
    _file: Option<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(
        "another deckhand is already serving the SQLite store {path}; SQLite serves one replica. Stop the other one, or use PostgreSQL (store.url = \"postgres://...\") to run several"
    )]
    SqliteInUse { path: String },
    #[error("cannot lock the SQLite store {path}: {source}")]
    Lock { path: String, source: std::io::Error },
}

impl Store {
    /// Claims the store for this replica: an exclusive lock for a SQLite file, nothing for
    /// PostgreSQL (or an in-memory SQLite database).
    pub fn claim_replica(&self, url: &str) -> Result<ReplicaLock, ReplicaError> {
        if self.backend() != Backend::Sqlite {
            return Ok(ReplicaLock { _file: None });
        }
        let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path.contains(":memory:") {
            return Ok(ReplicaLock { _file: None });
        }
        let lock_path = format!("{path}.serve.lock");
        let lock_err = |source| ReplicaError::Lock {
            path: lock_path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_err)?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
                ReplicaError::SqliteInUse { path: path.to_owned() }
            } else {
                lock_err(e)
            });
        }
        Ok(ReplicaLock { _file: Some(file) })
    }

    /// Tells every replica that work was queued (PostgreSQL; SQLite has one replica, which
    /// wakes itself).
    pub async fn notify_work(&self) -> Result<(), StoreError> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }
}

/// Calls `on_work` whenever a replica queues work, until `stop` (PostgreSQL only). The
/// connection is re-established after a failure; missed notifications only mean waiting for
/// the next poll.
pub async fn listen_for_work(
    url: String,
    backend: Backend,
    on_work: impl Fn() + Send + 'static,
    stop: CancellationToken,
) {
    if backend != Backend::Postgres {
        return;
    }
    let mut delay = Duration::from_millis(200);
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect(&url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = tokio::select! {
            _ = stop.cancelled() => return,
            l = listener => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN for work from other replicas; polling meanwhile");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                    continue;
                }
            },
        };
        delay = Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                n = listener.recv() => match n {
                    Ok(_) => on_work(),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the LISTEN connection; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}
