//! One group-commit queue for the writes chat delivery makes beside the acknowledgements:
//! the outbox's bookkeeping (delivery_writes.rs) and the conversation state
//! (surface_writes.rs).
//!
//! They used to be two queues, each with its own transaction. On SQLite, which has one
//! writer, a new request's group commit then waited behind up to two of them in turn; with
//! one queue it waits behind at most one, and that one is kept short ([`Bookkeeping::MAX`]
//! statements), so the acknowledgement's latency stays bounded while posts go on (issue 14).
//! Each write is still its own compare-and-set on its own rows, so sharing a transaction
//! changes nothing about who wins.

use sqlx::AnyConnection;

use super::{StoreError, batch::OneStatement, delivery_writes::DeliveryWrite, surface_writes::SurfaceSwap};

pub(super) enum Bookkeeping {
    Delivery(DeliveryWrite),
    Surface(SurfaceSwap),
}

impl OneStatement for Bookkeeping {
    /// Rows changed (a surface swap changes its one row when it wins).
    type Output = u64;
    /// About 30 µs a statement on SQLite: a new request waits at most a couple of
    /// milliseconds for the writer.
    const MAX: usize = 48;

    async fn execute(&self, conn: &mut AnyConnection) -> Result<u64, StoreError> {
        match self {
            Bookkeeping::Delivery(write) => write.run(conn).await,
            Bookkeeping::Surface(swap) => swap.run(conn).await.map(u64::from),
        }
    }
}
