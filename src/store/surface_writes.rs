//! Conversation-state writes (`requests.surface_data`), group-committed.
//!
//! Every chat post that changes a conversation's state (its root message's ts, the prompts
//! posted, what the status message shows) writes it back with a compare-and-set. One
//! transaction each, they were the outbox's last unbatched write: a commit per post beside
//! the acknowledgements (issue 14). Batched like the delivery bookkeeping (batch.rs), each
//! is still its own compare-and-set on its own row, so sharing a commit changes nothing
//! about who wins.

use sqlx::AnyConnection;

use super::StoreError;
use crate::domain::RequestId;

/// Replace `id`'s surface data with `after` if it is still `before` (JSON text).
#[derive(Debug, Clone)]
pub(super) struct SurfaceSwap {
    pub id: RequestId,
    pub before: Option<String>,
    pub after: String,
}

impl SurfaceSwap {
    /// Runs the compare-and-set; whether it won.
    pub(super) async fn run(&self, conn: &mut AnyConnection) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE requests SET surface_data = $1 WHERE id = $2 \
             AND ((surface_data IS NULL AND $3 IS NULL) OR surface_data = $3)",
        )
        .bind(&self.after)
        .bind(self.id.as_str())
        .bind(self.before.as_deref())
        .execute(conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
