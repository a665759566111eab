//! Files an action hands to its request's thread (a load test's chart). The bytes go into
//! the `attachments` table; the event that announces them carries only a reference
//! (`data.attachment`), so request views and event streams stay small, and each chat
//! surface fetches and uploads the file when it shows that event.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

use crate::{
    domain::{new_token, now_ms},
    store::StoreError,
};

/// What an output event's `attachment` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub title: String,
    pub bytes: usize,
}

#[derive(Clone)]
pub struct Attachments {
    pool: AnyPool,
}

impl Attachments {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    pub async fn put(
        &self,
        request_id: &str,
        filename: &str,
        content_type: &str,
        title: &str,
        bytes: &[u8],
    ) -> Result<AttachmentRef, StoreError> {
        let id = format!("a-{}", new_token(12));
        sqlx::query(
            "INSERT INTO attachments (id, request_id, filename, content_type, title, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(request_id)
        .bind(filename)
        .bind(content_type)
        .bind(title)
        .bind(STANDARD.encode(bytes))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(AttachmentRef {
            id,
            filename: filename.to_owned(),
            content_type: content_type.to_owned(),
            title: title.to_owned(),
            bytes: bytes.len(),
        })
    }

    /// The file `id` of request `request_id`: (content type, filename, bytes).
    pub async fn get_for(&self, request_id: &str, id: &str) -> Result<Option<(String, String, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT content_type, filename FROM attachments WHERE id = $1 AND request_id = $2")
            .bind(id)
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let Some(bytes) = self.get(id).await? else {
            return Ok(None);
        };
        Ok(Some((row.try_get("content_type")?, row.try_get("filename")?, bytes)))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT data FROM attachments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let data: String = row.try_get("data")?;
        STANDARD
            .decode(data)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("attachment {id}: {e}")))
    }
}
