//! The `page_links` table: one row per minted page link, the token kept only as its hash.

use sqlx::{AnyPool, Row};

use super::PageError;
use crate::{
    domain::now_ms,
    proxy::{hash_token, new_token},
};

/// A page link as stored: whose it is and what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLink {
    pub request_id: String,
    /// The deckhand user the page shows the request to (their audience, not the requester's).
    pub viewer: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl PageLink {
    pub fn is_open_at(&self, now: i64) -> bool {
        now < self.expires_at
    }
}

/// The links, over the store's pool (SQLite or PostgreSQL, portable SQL).
#[derive(Clone)]
pub struct PageLinks {
    pool: AnyPool,
}

impl PageLinks {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Mints a link to `request_id` for `viewer`, open for `ttl_ms`; returns the token, which
    /// is shown once (in the URL) and never stored.
    pub async fn mint(&self, request_id: &str, viewer: &str, ttl_ms: i64) -> Result<(String, PageLink), PageError> {
        let token = new_token();
        let now = now_ms();
        let link = PageLink {
            request_id: request_id.to_owned(),
            viewer: viewer.to_owned(),
            created_at: now,
            expires_at: now.saturating_add(ttl_ms.max(0)),
        };
        sqlx::query(
            "INSERT INTO page_links (token_hash, request_id, viewer, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash_token(&token))
        .bind(&link.request_id)
        .bind(&link.viewer)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(&self.pool)
        .await?;
        Ok((token, link))
    }

    /// The link `token` names, open or not: one digest and one indexed lookup for any
    /// input, so a guess learns nothing from timing about how close it was.
    pub async fn by_token(&self, token: &str) -> Result<Option<PageLink>, PageError> {
        let row =
            sqlx::query("SELECT request_id, viewer, created_at, expires_at FROM page_links WHERE token_hash = $1")
                .bind(hash_token(token))
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let get = |e: sqlx::Error| PageError::Corrupt(e.to_string());
        Ok(Some(PageLink {
            request_id: row.try_get("request_id").map_err(get)?,
            viewer: row.try_get("viewer").map_err(get)?,
            created_at: row.try_get("created_at").map_err(get)?,
            expires_at: row.try_get("expires_at").map_err(get)?,
        }))
    }

    /// Deletes links that expired before `before`; how many went.
    pub async fn sweep(&self, before: i64) -> Result<u64, PageError> {
        Ok(sqlx::query("DELETE FROM page_links WHERE expires_at <= $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
