//! Room on PostgreSQL's pages for the rows the chat outbox updates.
//!
//! Every command's request row is updated twice after its commit (its conversation state,
//! `Store::swap_surface_data`) and each of its delivery rows twice (claimed, then marked
//! delivered). PostgreSQL writes an update as a new version of the row. When that version
//! fits on the row's own page and no indexed column changed, it is a heap-only tuple (HOT)
//! and no index is touched; otherwise every index of the table gets a new entry, five for
//! `requests`. Tables are packed full by default, so the first update of a new row usually
//! found its page full: in a bench part 32% of the requests' updates and 70% of the
//! deliveries' were not HOT (a mark changes `state`, which is indexed, and is never HOT; a
//! claim can be). Leaving 30% of each new page free made 84% of the requests' updates and
//! 44% of the deliveries' HOT; the PostgreSQL part measured 4,044-4,786 acks/s against
//! 3,826-4,130 without, near the spread of this bench (issue 14; docs/performance-log.md,
//! round eighteen).
//!
//! The setting applies to pages written from then on; set once, it is not set again (it
//! takes a lock that waits for a running `ANALYZE` or `VACUUM`). SQLite has no such setting:
//! it rewrites a row in place in its B-tree page.

use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::StoreError;

/// How full PostgreSQL fills a new page of these tables, in percent.
const FILLFACTOR: u8 = 70;
const TABLES: [&str; 2] = ["requests", "deliveries"];

/// Sets the fill factor of the tables whose rows are updated after their insert, where it is
/// not set already. Only an optimization: where deckhand's role does not own the tables
/// (they were created by another), it says what to run and goes on.
pub(super) async fn leave_room(pool: &AnyPool) {
    for table in TABLES {
        if let Err(e) = set(pool, table).await {
            tracing::warn!(
                table,
                error = %e,
                "could not set the table's fill factor; as its owner, run: ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})"
            );
        }
    }
}

async fn set(pool: &AnyPool, table: &str) -> Result<(), StoreError> {
    let wanted = format!("fillfactor={FILLFACTOR}");
    let options: String = sqlx::query(
        "SELECT COALESCE(array_to_string(reloptions, ','), '') AS options FROM pg_class \
         WHERE oid = CAST($1 AS regclass)",
    )
    .bind(table)
    .fetch_one(pool)
    .await?
    .try_get("options")?;
    if !options.split(',').any(|o| o == wanted) {
        sqlx::query(AssertSqlSafe(format!("ALTER TABLE {table} SET ({wanted})")))
            .execute(pool)
            .await?;
    }
    Ok(())
}
