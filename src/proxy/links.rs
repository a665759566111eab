//! The `proxies` table: one row per link, the token kept only as its hash.

use sqlx::{AnyPool, Row, any::AnyRow};

use super::{
    ProxyError,
    gate::{RECENT_KEPT, Recent},
};
use crate::domain::now_ms;

/// A recorded path never carries a query string: queries often hold secrets (reset
/// tokens, API keys) and `proxy list` shows recorded paths to everyone who may run it.
fn without_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

/// What `proxy.open` stores.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub id: String,
    pub token_hash: String,
    pub env: String,
    pub service: String,
    pub port: i64,
    pub requester: String,
    pub request_id: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub id: String,
    pub env: String,
    pub service: String,
    pub port: i64,
    pub requester: String,
    pub request_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub hits: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Open,
    Expired,
    Revoked,
}

impl Link {
    pub fn state_at(&self, now: i64) -> LinkState {
        if self.revoked_at.is_some() {
            LinkState::Revoked
        } else if self.expires_at <= now {
            LinkState::Expired
        } else {
            LinkState::Open
        }
    }
}

const COLUMNS: &str =
    "id, env, service, port, requester, request_id, created_at, expires_at, revoked_at, revoked_by, hits, last_used_at";

fn link_from_row(row: &AnyRow) -> Result<Link, ProxyError> {
    let get = |e: sqlx::Error| ProxyError::Corrupt(e.to_string());
    Ok(Link {
        id: row.try_get("id").map_err(get)?,
        env: row.try_get("env").map_err(get)?,
        service: row.try_get("service").map_err(get)?,
        port: row.try_get("port").map_err(get)?,
        requester: row.try_get("requester").map_err(get)?,
        request_id: row.try_get("request_id").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        revoked_at: row.try_get("revoked_at").map_err(get)?,
        revoked_by: row.try_get("revoked_by").map_err(get)?,
        hits: row.try_get("hits").map_err(get)?,
        last_used_at: row.try_get("last_used_at").map_err(get)?,
    })
}

/// The links, over the store's pool (SQLite or PostgreSQL, portable SQL).
#[derive(Clone)]
pub struct Links {
    pool: AnyPool,
}

impl Links {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    pub async fn insert(&self, new: &NewLink) -> Result<Link, ProxyError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO proxies (id, token_hash, env, service, port, requester, request_id, created_at, expires_at, hits) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)",
        )
        .bind(&new.id)
        .bind(&new.token_hash)
        .bind(&new.env)
        .bind(&new.service)
        .bind(new.port)
        .bind(&new.requester)
        .bind(&new.request_id)
        .bind(now)
        .bind(new.expires_at)
        .execute(&self.pool)
        .await?;
        self.get(&new.id)
            .await?
            .ok_or_else(|| ProxyError::Corrupt("link vanished after insert".into()))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Link>, ProxyError> {
        self.one_where("id", id).await
    }

    pub async fn by_hash(&self, token_hash: &str) -> Result<Option<Link>, ProxyError> {
        self.one_where("token_hash", token_hash).await
    }

    /// The link whose unique `column` (a name from this file, never input) is `value`.
    async fn one_where(&self, column: &'static str, value: &str) -> Result<Option<Link>, ProxyError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM proxies WHERE {column} = $1"
        )))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    /// Adds `count` proxied requests and records the latest of them, keeping the newest
    /// `RECENT_KEPT` per link; one transaction.
    pub async fn add_hits(&self, id: &str, count: i64, recent: &[Recent]) -> Result<(), ProxyError> {
        let last_used_at = recent.iter().map(|r| r.at).max().unwrap_or_else(now_ms);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE proxies SET hits = hits + $2, \
             last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $3 THEN $3 ELSE last_used_at END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(count)
        .bind(last_used_at)
        .execute(&mut *tx)
        .await?;
        for r in recent {
            sqlx::query(
                "INSERT INTO proxy_requests (link_id, at, method, path, status, millis) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(r.at)
            .bind(&r.method)
            .bind(without_query(&r.path))
            .bind(i32::from(r.status))
            .bind(r.millis)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM proxy_requests WHERE link_id = $1 AND at < \
             (SELECT at FROM proxy_requests WHERE link_id = $1 ORDER BY at DESC LIMIT 1 OFFSET $2)",
        )
        .bind(id)
        .bind(i64::try_from(RECENT_KEPT - 1).unwrap_or(0))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A link's latest requests, newest first.
    pub async fn recent(&self, id: &str, limit: i64) -> Result<Vec<Recent>, ProxyError> {
        let rows = sqlx::query(
            "SELECT at, method, path, status, millis FROM proxy_requests WHERE link_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let get = |e: sqlx::Error| ProxyError::Corrupt(e.to_string());
        rows.iter()
            .map(|row| {
                let status: i32 = row.try_get("status").map_err(get)?;
                Ok(Recent {
                    at: row.try_get("at").map_err(get)?,
                    method: row.try_get("method").map_err(get)?,
                    // Rows written before queries were left out may still hold one.
                    path: without_query(&row.try_get::<String, _>("path").map_err(get)?).to_owned(),
                    status: u16::try_from(status).unwrap_or(0),
                    millis: row.try_get("millis").map_err(get)?,
                })
            })
            .collect()
    }

    /// Revokes an open link; `false` when it was already revoked (or does not exist).
    pub async fn revoke(&self, id: &str, by: &str) -> Result<bool, ProxyError> {
        let n = sqlx::query("UPDATE proxies SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now_ms())
            .bind(by)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Which of `ids` are revoked, or expired at `now`: one indexed lookup by primary key.
    pub async fn closed_among(&self, ids: &[String], now: i64) -> Result<Vec<String>, ProxyError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Placeholders only ($2, $3, ...): the ids themselves are bound.
        let marks: Vec<String> = (2..ids.len() + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT id FROM proxies WHERE id IN ({}) AND (revoked_at IS NOT NULL OR expires_at <= $1)",
            marks.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| row.try_get("id").map_err(|e| ProxyError::Corrupt(e.to_string())))
            .collect()
    }

    /// Newest first, optionally of one environment.
    pub async fn list(&self, env: Option<&str>, limit: i64) -> Result<Vec<Link>, ProxyError> {
        let rows = match env {
            Some(env) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM proxies WHERE env = $1 ORDER BY created_at DESC, id LIMIT $2"
                )))
                .bind(env)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM proxies ORDER BY created_at DESC, id LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(link_from_row).collect()
    }
}
