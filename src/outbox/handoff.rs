//! A new chat request handed from its acknowledgement to this replica's deliverer in memory.
//!
//! The request path has just written the request, its first events and their delivery rows,
//! and holds all of them; the deliverer used to find them with a poll (a claim write on the
//! store's writer beside the acknowledgements) and read them back (issue 14). When the
//! deliverer has room, the first delivery row is now stored already claimed by this replica,
//! in the same commit as the request (`Store::insert_request` with a [`Lease`]), and the
//! request and its events are handed over here: no claim and no read for a new request.
//!
//! Nothing is lost on the way: the row is stored before the hand-over, and were the process
//! to die first, its claim runs out and any replica's poll posts it, as after a crash
//! mid-post. A hand-over the deliverer takes more than a second after its claim began is
//! left to that poll instead, so its post cannot outlive its claim and two deliverers never
//! post a row at once. With no room (a burst past [`QUEUE`]), or with no deliverer running on this replica,
//! the rows are stored unclaimed and the poll finds them as before.

use std::sync::{
    Mutex,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use tokio::sync::mpsc;

use crate::{
    domain::now_ms,
    store::{Event, Head, Lease, Loaded, RequestRecord},
};

/// New requests waiting for the deliverer; past this, new rows are left to the poll.
pub const QUEUE: usize = 64;

/// A new request for the deliverer: its first row (claimed by this replica until `until`),
/// and the request and events as stored.
pub(super) struct Fresh {
    pub(super) head: Head,
    pub(super) loaded: Loaded,
    pub(super) until: i64,
}

/// The queue between the request path and this replica's deliverer.
pub struct Handoff {
    tx: mpsc::Sender<Fresh>,
    rx: Mutex<Option<mpsc::Receiver<Fresh>>>,
    /// Whether a deliverer took the queue (and so reads it).
    open: AtomicBool,
    /// Requests handed over, for /metrics.
    handed: AtomicU64,
}

impl Default for Handoff {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            open: AtomicBool::new(false),
            handed: AtomicU64::new(0),
        }
    }
}

/// A place in the queue, and the claim to store the request's first row with.
pub struct Reserved<'a> {
    permit: mpsc::Permit<'a, Fresh>,
    lease: Lease,
    handed: &'a AtomicU64,
}

impl Handoff {
    /// New requests handed over so far.
    pub fn handed_over(&self) -> u64 {
        self.handed.load(Ordering::Relaxed)
    }

    /// The deliverer's end of the queue; `None` once taken.
    pub(super) fn take(&self) -> Option<mpsc::Receiver<Fresh>> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        self.open.store(true, Ordering::Release);
        Some(rx)
    }

    /// A place for a new request whose first row `owner` will claim for `lease_ms`, if the
    /// deliverer runs and has room.
    pub fn reserve(&self, owner: &str, lease_ms: i64) -> Option<Reserved<'_>> {
        if !self.open.load(Ordering::Acquire) {
            return None;
        }
        let permit = self.tx.try_reserve().ok()?;
        Some(Reserved {
            permit,
            handed: &self.handed,
            lease: Lease {
                owner: owner.to_owned(),
                until: now_ms().saturating_add(lease_ms),
            },
        })
    }
}

impl Reserved<'_> {
    /// The claim to store the first delivery row with.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Hands the stored request to the deliverer. Only for a request stored with
    /// [`Self::lease`]; a reservation that is dropped instead hands over nothing.
    pub fn hand_over(self, request: RequestRecord, events: Vec<Event>) {
        let Some(first) = events.first() else {
            return;
        };
        let head = Head {
            request_id: request.id.clone(),
            seq: first.seq,
            attempts: 0,
            created_at: first.at,
        };
        self.handed.fetch_add(1, Ordering::Relaxed);
        self.permit.send(Fresh {
            head,
            loaded: (request, events),
            until: self.lease.until,
        });
    }
}

impl Fresh {
    /// Whether the claim is still as good as a poll's: the deliverer gives an attempt the lease
    /// less 2 s (`outbox::timed`), so a claim that lost over a second waiting here is left to
    /// the poll once it runs out, and a post never outlives its claim.
    pub(super) fn in_time(&self, lease_ms: i64, now: i64) -> bool {
        in_time(self.until, lease_ms, now)
    }
}

fn in_time(until: i64, lease_ms: i64, now: i64) -> bool {
    until.saturating_sub(now) >= lease_ms - 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_reserved_until_a_deliverer_takes_the_queue_nor_past_its_room() {
        let handoff = Handoff::default();
        assert!(handoff.reserve("w-1", 10_000).is_none(), "no deliverer yet");
        let _rx = handoff.take().expect("the queue");
        assert!(handoff.take().is_none(), "taken once");
        let held: Vec<_> = (0..QUEUE).map_while(|_| handoff.reserve("w-1", 10_000)).collect();
        assert_eq!(held.len(), QUEUE);
        assert!(handoff.reserve("w-1", 10_000).is_none(), "full: left to the poll");
        drop(held);
        let r = handoff.reserve("w-1", 10_000).expect("room again");
        assert_eq!(r.lease().owner, "w-1");
        assert!(r.lease().until >= now_ms() + 9_000);
    }

    #[test]
    fn a_hand_over_too_late_for_its_claim_is_left_to_the_poll() {
        assert!(in_time(20_000, 10_000, 10_500));
        assert!(in_time(20_000, 10_000, 11_000));
        assert!(!in_time(20_000, 10_000, 11_001));
    }
}
