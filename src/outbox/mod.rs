//! The chat outbox's deliverer: posts stored events to their threads, on any replica.
//!
//! Chat delivery used to be an in-memory queue: a crash lost what was not yet posted. Now
//! every event of a chat request is stored with a delivery row in the same transaction
//! (`Store::append_event`), and this loop claims rows (lease, compare-and-set), posts them in
//! per-request order and records the platform's message id. A failure is retried with
//! backoff (a Retry-After the platform asked for included) until `delivery.retry_for`, a
//! refusal that retrying cannot fix is not; either way the row ends `failed`, counted in
//! /metrics and shown in the request's API view, and the thread goes on with the next event.
//!
//! Progress lines are merged from stored rows: a line that arrives within the surface's
//! progress interval of the last one shown waits in the outbox, and the run of waiting lines
//! is shown as its latest line in the status message (one edit). A crash between merges
//! loses nothing, because nothing waits in memory.
//!
//! The one repeat allowed: a call in flight when the process dies is posted again when its
//! lease runs out, since deckhand cannot know whether the platform got it.
//!
//! A new request's first rows need no poll: the replica that stored them claimed them in
//! the same commit and hands them to this loop in memory (handoff.rs).

mod deliverer;
pub mod handoff;

use deliverer::Deliverer;

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{
    app::App,
    domain::{RequestId, now_ms},
    store::{Event, EventKind, Head, Loaded, RequestRecord, Store, StoreError},
    surface::{self, ChatSurface, Delivery, SurfaceError},
};

/// How often the deliverer looks for due rows besides being woken: retries and rows stored
/// by other replicas.
const POLL: Duration = Duration::from_millis(250);
/// Requests delivered at the same time by one replica (each in order).
const CONCURRENCY: usize = 16;
/// Rows claimed by one poll.
const HEADS: i64 = 64;
/// Rows of one request posted one after the other by one deliverer (see [`follow_on`]).
const FOLLOW_ON: usize = 8;
/// Progress lines merged into one reply at most.
const MAX_RUN: i64 = 200;
/// How long a row for a surface this replica does not have waits before it is looked at again.
const UNCONFIGURED_RETRY_MS: i64 = 30_000;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 60_000;

/// Runs until `shutdown`; in-flight posts are left to finish or to their leases.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    if app.surfaces.is_empty() {
        return;
    }
    let Some(mut fresh) = app.surfaces.handoff.take() else {
        tracing::warn!("a deliverer is already running here");
        return;
    };
    let mut deliverer = Deliverer::new(CONCURRENCY);
    let lease_ms = app.config.delivery.lease.as_millis_i64();
    let mut next_poll = tokio::time::Instant::now();
    let mut last_poll = next_poll.checked_sub(POLL).unwrap_or(next_poll);
    // Whether the last poll found as many rows as it may claim (so more may be waiting).
    let mut more = false;
    // Whether a row was stored since a delivery started: its request's previous row may have
    // been in flight, so the poll it woke passed it over.
    let mut woken = false;
    loop {
        // Finished deliveries are joined here, all of them: a JoinSet keeps a finished
        // task (its future's memory) until it is joined, and joining one per wake-up let
        // tens of thousands pile up under a burst (issue 14's memory figures).
        while deliverer.tasks.try_join_next().is_some() {}
        let now = tokio::time::Instant::now();
        if now >= next_poll && !hand_overs_first(fresh.is_empty(), now - last_poll) {
            more = deliverer.poll(&app).await == HEADS as usize;
            last_poll = tokio::time::Instant::now();
            next_poll = last_poll + POLL;
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(new) = fresh.recv() => {
                // A hand-over too late for its claim is left to the poll after the claim.
                if new.in_time(lease_ms, now_ms()) {
                    deliverer.start(&app, new.head, Some(new.loaded)).await;
                }
            }
            _ = app.surfaces.wake.notified() => {
                next_poll = tokio::time::Instant::now();
                woken = true;
            }
            _ = tokio::time::sleep_until(next_poll) => {}
            // A finished delivery calls for a poll only when rows may be waiting: the last
            // poll left some behind, or a row was stored meanwhile (perhaps behind this one).
            Some(_) = deliverer.tasks.join_next(), if !deliverer.tasks.is_empty() => {
                if more || woken {
                    next_poll = tokio::time::Instant::now();
                    woken = false;
                }
            }
        }
    }
    // Let posts under way finish briefly; the rest are retried after their leases.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while deliverer.tasks.join_next().await.is_some() {}
    })
    .await;
    deliverer.tasks.abort_all();
}

/// Whether a due poll waits for the hand-overs queued now (`queue_empty` false): they cost
/// no claim and no read, and one left in the queue past a second waits out its claim's lease
/// (10 s by default) before a poll may take it. Under a burst the deliverer is behind, wakes
/// and finished deliveries ask for a poll all the time, and polls took the slots while the
/// queue aged (docs/performance-log.md, round thirteen). A poll still runs every [`POLL`]: the rows
/// that found the queue full, retries and other replicas' rows are not starved.
fn hand_overs_first(queue_empty: bool, since_last_poll: Duration) -> bool {
    !queue_empty && since_last_poll < POLL
}

/// The rows this replica delivers next, claimed (leased) in one write.
async fn claim_heads(app: &App) -> Result<Vec<Head>, StoreError> {
    let (now, until) = lease_from_now(app);
    app.store.claim_heads(now, HEADS, app.worker_id.as_str(), until).await
}

/// The claimed heads' requests and events, read for the whole poll; `None` when that read
/// failed, so each delivery reads its own.
async fn load(app: &App, heads: &[Head]) -> Option<std::collections::HashMap<RequestId, Loaded>> {
    // On PostgreSQL the batched read once left the bench's posts minutes behind the acks.
    // With the LATERAL events read (outbox_reads.rs) it keeps up, but in three PostgreSQL-only
    // bench runs against two without it, it gained less than the runs' spread and its 1,000/s
    // p99 was higher; PostgreSQL still reads per delivery (docs/performance-log.md, round eight).
    if app.store.backend() == crate::store::Backend::Postgres {
        return None;
    }
    match app.store.load_heads(heads).await {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the claimed requests at once; reading them one by one");
            None
        }
    }
}

/// Now, and when a lease taken now runs out.
fn lease_from_now(app: &App) -> (i64, i64) {
    let lease = app.config.delivery.lease.as_duration();
    let now = now_ms();
    (now, now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2))
}

/// Delivers the oldest pending row of a request, claimed for this replica with the poll that
/// found it, and the rows that may follow it at once (see [`follow_on`]), from the request
/// and events read with the poll (`Store::load_heads`): the conversation state is carried
/// from one post to the next, not read again.
async fn deliver(app: &App, head: Head, (mut request, all): Loaded) -> Result<(), StoreError> {
    let store = &app.store;
    let owner = app.worker_id.as_str();
    let id = head.request_id.clone();
    let Some(surface) = app.surfaces.get(request.surface).cloned() else {
        // Not configured on this replica: another one (or a later start) posts it; look
        // again in a while rather than at every poll.
        return store
            .defer_delivery(&id, head.seq, owner, now_ms() + UNCONFIGURED_RETRY_MS)
            .await;
    };
    let mut head = head;
    for round in 1..=FOLLOW_ON {
        let Some((last, shown)) = attempt(app, surface.as_ref(), &request, &all, &head).await? else {
            return Ok(());
        };
        let next = (round < FOLLOW_ON).then(|| follow_on(&all, last)).flatten();
        let (now, until) = lease_from_now(app);
        let claim = next.map(|e| (e.seq, until));
        let claimed = store
            .delivered(&id, head.seq, last, owner, shown.message.as_deref(), now, claim)
            .await?;
        let Some(next) = next.filter(|_| claimed) else {
            return Ok(());
        };
        // The conversation state the post just stored (the root message's ts, say), as it
        // wrote it: not read again. Should another writer have changed it since, the next
        // post's compare-and-set finds out and lays its change over theirs.
        if let Some(stored) = shown.conversation {
            request.surface_data = Some(stored);
        }
        head = Head {
            request_id: id.clone(),
            seq: next.seq,
            attempts: 0,
            created_at: next.at,
        };
    }
    Ok(())
}

/// [`deliver`], reading the request and its events itself.
async fn deliver_read(app: &App, head: Head) -> Result<(), StoreError> {
    let Some(request) = app.store.get(&head.request_id).await? else {
        return Ok(());
    };
    let all = app.store.events_from(&head.request_id, head.seq).await?;
    deliver(app, head, (request, all)).await
}

/// The event the deliverer that just showed row `last` posts next without waiting for a
/// poll: the next one, when it was stored by then and is not a thread progress line (those
/// wait for the surface's interval). A new request's root message and approval prompt so
/// take one claim and one read of the request and its events, not two (issue 14).
fn follow_on(all: &[Event], last: i64) -> Option<&Event> {
    all.iter()
        .find(|e| e.seq == last + 1)
        .filter(|e| !is_thread_progress(e))
}

/// One attempt at `head` (and, for progress, the run of progress rows after it):
/// `Some((last row shown, what the platform made of it))` when it reached the thread, for
/// the caller to record; `None` when it was held back or failed, which is recorded here.
async fn attempt(
    app: &App,
    surface: &dyn ChatSurface,
    request: &RequestRecord,
    all: &[Event],
    head: &Head,
) -> Result<Option<(i64, surface::Shown)>, StoreError> {
    let (store, owner, id) = (&app.store, app.worker_id.as_str(), &head.request_id);
    let lease = app.config.delivery.lease.as_duration();
    let Some(at) = all.iter().position(|e| e.seq == head.seq) else {
        return Ok(None);
    };
    let first = &all[at];
    let (last_seq, result) = if is_thread_progress(first) {
        let Some(run) = progress_to_show(app, surface, request, &all[at..], head).await? else {
            return Ok(None);
        };
        let last_seq = run.last().map_or(head.seq, |e| e.seq);
        let request = surface::as_of(request, all, last_seq);
        let latest = run.last().map_or(first.message.as_str(), |e| e.message.as_str());
        let shown = timed(lease, surface.surface(), surface.show_progress(store, &request, latest)).await;
        (last_seq, shown)
    } else {
        let request = surface::as_of(request, all, head.seq);
        let shown = timed(lease, surface.surface(), surface.publish(store, &request, first)).await;
        (head.seq, shown)
    };
    let e = match result {
        Ok(shown) => return Ok(Some((last_seq, shown))),
        Err(e) => e,
    };
    let retry_at = retry_at(app, head, &e);
    match retry_at {
        Some(at) => {
            tracing::info!(request = %id, seq = head.seq, error = %e, retry_in_ms = at - now_ms(), "delivery failed; will retry")
        }
        None => tracing::warn!(request = %id, seq = head.seq, error = %e, "delivery failed for good"),
    }
    store
        .delivery_failed(id, head.seq, last_seq, owner, &e.message, retry_at)
        .await?;
    Ok(None)
}

/// The progress rows to show now from `events[0]` (the head) on, claimed; `None` when the
/// head waits for the surface's interval (given back, due then) or another deliverer holds
/// part of the run.
async fn progress_to_show<'a>(
    app: &App,
    surface: &dyn ChatSurface,
    request: &RequestRecord,
    events: &'a [Event],
    head: &Head,
) -> Result<Option<Vec<&'a Event>>, StoreError> {
    let (store, owner, id) = (&app.store, app.worker_id.as_str(), &head.request_id);
    let run = match hold_progress(store, request, surface).await? {
        Hold::Until(at) => {
            store.defer_delivery(id, head.seq, owner, at).await?;
            return Ok(None);
        }
        // The first line of a burst goes at once, alone.
        Hold::No => vec![&events[0]],
        // Lines that waited out the interval go together.
        Hold::Waited => progress_run(store, request, events).await?,
    };
    let last_seq = run.last().map_or(head.seq, |e| e.seq);
    let (now, until) = lease_from_now(app);
    if last_seq > head.seq
        && !store
            .claim_deliveries(id, head.seq + 1, last_seq, owner, now, until)
            .await?
    {
        // Another deliverer holds part of the run (it cannot, while we hold its head).
        return Ok(None);
    }
    Ok(Some(run))
}

fn is_thread_progress(event: &Event) -> bool {
    event.kind == EventKind::Progress && surface::delivery(event) == Delivery::Thread
}

/// Whether a progress line waits for the surface's interval since the last one posted.
enum Hold {
    /// No interval, or no progress posted within it: this line goes now, alone.
    No,
    /// Posted too recently: due at this time.
    Until(i64),
    /// An earlier line was posted and the interval has passed: the waiting lines go together.
    Waited,
}

async fn hold_progress(store: &Store, request: &RequestRecord, surface: &dyn ChatSurface) -> Result<Hold, StoreError> {
    let interval = i64::try_from(surface.progress_interval().as_millis()).unwrap_or(0);
    if interval == 0 {
        return Ok(Hold::No);
    }
    let now = now_ms();
    Ok(match store.last_progress_delivered(&request.id).await? {
        Some(last) if last + interval > now => Hold::Until(last + interval),
        Some(last) if now - last < 2 * interval => Hold::Waited,
        _ => Hold::No,
    })
}

/// The stored progress events waiting from the head on, while they are thread progress.
async fn progress_run<'a>(
    store: &Store,
    request: &RequestRecord,
    events: &'a [Event],
) -> Result<Vec<&'a Event>, StoreError> {
    let pending = store
        .pending_run(&request.id, events[0].seq, EventKind::Progress.as_str(), MAX_RUN)
        .await?;
    Ok(events
        .iter()
        .zip(pending)
        .take_while(|(e, seq)| e.seq == *seq && is_thread_progress(e))
        .map(|(e, _)| e)
        .collect())
}

/// A call that outlives its lease is abandoned (and retried), so two deliverers never post
/// the same row at once.
async fn timed<F>(lease: Duration, on: crate::domain::Surface, call: F) -> Result<surface::Shown, SurfaceError>
where
    F: std::future::Future<Output = Result<surface::Shown, SurfaceError>>,
{
    let budget = lease.saturating_sub(Duration::from_secs(2)).max(Duration::from_secs(1));
    match tokio::time::timeout(budget, call).await {
        Ok(r) => r,
        Err(_) => Err(SurfaceError::transient(
            on,
            format!("no answer within {}s", budget.as_secs()),
        )),
    }
}

/// When to try again: never after a permanent refusal or once `delivery.retry_for` has
/// passed since the event was stored; else after an exponential backoff.
fn retry_at(app: &App, head: &Head, e: &SurfaceError) -> Option<i64> {
    let retry_for = i64::try_from(app.config.delivery.retry_for.as_duration().as_millis()).unwrap_or(i64::MAX / 2);
    let now = now_ms();
    let backoff = 500_i64
        .saturating_mul(1_i64 << head.attempts.clamp(0, 16))
        .min(MAX_BACKOFF_MS);
    let at = now + backoff;
    (!e.permanent && at <= head.created_at + retry_for).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_hand_overs_go_before_a_poll_but_never_past_the_poll_interval() {
        assert!(!hand_overs_first(true, Duration::ZERO), "nothing queued: poll");
        assert!(
            hand_overs_first(false, Duration::from_millis(10)),
            "queued, polled just now: hand-overs first"
        );
        assert!(
            !hand_overs_first(false, POLL),
            "queued, but a poll is due by the interval"
        );
    }
}
