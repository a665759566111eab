//! The chat-surface boundary: where a request's progress is pushed. Slack and Discord
//! implement it; requests from the HTTP API need none (clients stream events instead).
//!
//! What both chat platforms decide alike lives here, so the adapters only translate: which
//! events go to the thread and which go to the requester alone ([`delivery`]), and the
//! neutral line the thread gets instead of a private event ([`private_notice`]). A channel
//! thread is read by everyone in the channel, so a proxy or shell link or exec output never
//! goes there (see `crate::visibility`).

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    domain::{State, Surface},
    store::{Event, EventKind, RequestRecord, Store},
    visibility::Audience,
};

/// Where a chat surface shows an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In the request's thread, for everyone in the channel.
    Thread,
    /// To the requester alone (a Slack ephemeral message, a Discord ephemeral follow-up or
    /// DM), with only [`private_notice`] in the thread. Approvers-audience events go the same
    /// way: the chat platforms cannot show one message to a named group, and approvers read
    /// them with `request <id>`.
    Private(Audience),
}

/// How `event` is shown in chat. Status changes and approvals say nothing private (outcomes
/// never carry a private value); output and progress go privately when they are marked so.
pub fn delivery(event: &Event) -> Delivery {
    match event.kind {
        EventKind::State | EventKind::Approval => Delivery::Thread,
        EventKind::Output | EventKind::Progress => match Audience::of_event(event) {
            Audience::Everyone => Delivery::Thread,
            audience => Delivery::Private(audience),
        },
    }
}

/// The line the thread gets for a private event: that something was sent, to whom, and
/// never what. `requester` is the requester as the platform shows them (already escaped);
/// `delivered` is false when no private channel to them worked.
pub fn private_notice(request: &RequestRecord, audience: Audience, requester: &str, delivered: bool) -> String {
    let readers = match audience {
        Audience::Approvers => format!("{requester} and the approvers"),
        _ => requester.to_owned(),
    };
    if delivered {
        let also = match audience {
            Audience::Approvers => format!("; approvers can read it with `request {}`", request.id),
            _ => String::new(),
        };
        format!("🔒 Output sent privately to {requester}{also}.")
    } else {
        format!(
            "🔒 Private output could not be sent to {requester} directly; {readers} can read it with `request {}`.",
            request.id
        )
    }
}

/// What ends a command to post a private answer in the channel instead.
pub const SHARE_FLAG: &str = "--share";
/// The key in a chat request's surface data that says its answer is private (each
/// platform's conversation state has it as a field, so writing that state back keeps it).
const PRIVATE_ANSWER: &str = "private_answer";

/// Removes a trailing `--share` from `text`; true if it was there.
pub fn take_share_flag(text: &mut String) -> bool {
    let trimmed = text.trim_end();
    match trimmed.strip_suffix(SHARE_FLAG) {
        Some(rest) if rest.is_empty() || rest.ends_with(char::is_whitespace) => {
            *text = rest.trim_end().to_owned();
            true
        }
        _ => false,
    }
}

/// Marks a chat request's surface data: its answer goes to the person alone.
pub fn mark_private_answer(surface_data: &mut Option<serde_json::Value>) {
    if let Some(serde_json::Value::Object(map)) = surface_data {
        map.insert(PRIVATE_ANSWER.into(), serde_json::Value::Bool(true));
    }
}

/// Whether chat answers this request to the person alone: a read-only command (`answer:
/// private` in its spec) asked without `--share`. No status message, no thread: the output
/// (or why it failed) goes privately, once.
pub fn is_private_answer(request: &RequestRecord) -> bool {
    request
        .surface_data
        .as_ref()
        .and_then(|d| d.get(PRIVATE_ANSWER))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// What a private answer shows for one event.
pub enum PrivateAnswer<'a> {
    /// The command's output.
    Output(&'a Event),
    /// One line: how it ended, when that is news (a failure, or a success with no output).
    Line(String),
    Nothing,
}

/// The private answer to `event`; `answered` is true once an output was sent, so a
/// success does not repeat it. The state is the one the event announces (the record may
/// be newer than the event).
pub fn private_answer(event: &Event, answered: bool) -> PrivateAnswer<'_> {
    match (event.kind, announced(event)) {
        (EventKind::Output, _) => PrivateAnswer::Output(event),
        (EventKind::State, Some(State::Succeeded)) if answered => PrivateAnswer::Nothing,
        (EventKind::State, Some(state)) if state.is_terminal() => {
            PrivateAnswer::Line(format!("{state}: {}", event.message))
        }
        _ => PrivateAnswer::Nothing,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{surface} refused the update: {message}")]
pub struct SurfaceError {
    pub surface: Surface,
    pub message: String,
    /// Trying again will not help (the platform refused what was sent); the outbox marks
    /// the delivery failed at once instead of retrying it until `delivery.retry_for`.
    pub permanent: bool,
}

impl SurfaceError {
    /// A failure worth retrying: an outage, a 5xx, rate limits that outlasted the call.
    pub fn transient(surface: Surface, message: impl ToString) -> Self {
        Self {
            surface,
            message: message.to_string(),
            permanent: false,
        }
    }

    pub fn permanent(surface: Surface, message: impl ToString) -> Self {
        Self {
            surface,
            message: message.to_string(),
            permanent: true,
        }
    }
}

/// What showing an event left: on the platform, the id (Slack ts, Discord message id) of the
/// message it posted or edited, when there is one; in the store, the conversation state as
/// written, when showing it changed that state. The outbox carries the latter to the next
/// row it posts for the request instead of reading the request again (issue 14).
#[derive(Debug, Default)]
pub struct Shown {
    pub message: Option<String>,
    pub conversation: Option<serde_json::Value>,
}

#[async_trait]
pub trait ChatSurface: Send + Sync {
    fn surface(&self) -> Surface;

    /// Shows `event` in the request's thread (edit the status message, post a reply, post
    /// approval buttons). The outbox calls it in event order for each request, one event of
    /// a request at a time (different requests concurrently), and again after a failure or
    /// a crash mid-call. `request` was read from the store for this delivery, with the
    /// surface's own data (`RequestRecord::surface_data`) as of that read; the surface writes it
    /// back through `chat::conversation`, which merges a change made since.
    async fn publish(&self, store: &Store, request: &RequestRecord, event: &Event) -> Result<Shown, SurfaceError>;

    /// Shows the latest progress line of a run of stored progress events in the request's
    /// status message (edited in place: progress is not worth a notification, so it never
    /// becomes a thread reply).
    async fn show_progress(&self, store: &Store, request: &RequestRecord, line: &str) -> Result<Shown, SurfaceError>;

    /// The status message is edited for progress at most this often; the lines that arrive
    /// meanwhile wait in the outbox and only the latest is shown.
    fn progress_interval(&self) -> Duration {
        Duration::ZERO
    }
}

/// The state a state event announces (its typed data; see `crate::events`).
pub fn announced(event: &Event) -> Option<State> {
    event.data.announced()
}

/// The request as it stood when event `seq` was stored, for showing that event late (after
/// an outage or a restart): the state the last state event up to it announced, and an
/// outcome only if that state ends the request, taken from that event. The record may be
/// older than the events (the deliverer reads them in two statements, and the change that
/// ended the request can commit between the two), so its own outcome may not be set yet.
pub fn as_of(request: &RequestRecord, events: &[Event], seq: i64) -> RequestRecord {
    let mut then = request.clone();
    let change = events
        .iter()
        .filter(|e| e.seq <= seq)
        .filter_map(|e| e.data.state_change())
        .next_back();
    if let Some(change) = change {
        then.state = change.state;
        if change.outcome.is_some() {
            then.outcome = change.outcome.clone();
        }
    }
    if !then.state.is_terminal() {
        then.outcome = None;
    }
    then
}

/// The chat surfaces deckhand shows requests on, and the outbox's wake-up: every stored
/// event of a chat request already has its delivery row (`crate::outbox`), so telling the
/// deliverer to look is all that is left to do here.
#[derive(Clone, Default)]
pub struct Surfaces {
    map: HashMap<Surface, Arc<dyn ChatSurface>>,
    pub(crate) wake: Arc<Notify>,
    /// New requests handed to this replica's deliverer without a poll.
    pub(crate) handoff: Arc<crate::outbox::handoff::Handoff>,
}

impl Surfaces {
    pub fn has(&self, surface: Surface) -> bool {
        self.map.contains_key(&surface)
    }

    pub fn register(&mut self, surface: Arc<dyn ChatSurface>) {
        self.map.insert(surface.surface(), surface);
    }

    pub fn get(&self, surface: Surface) -> Option<&Arc<dyn ChatSurface>> {
        self.map.get(&surface)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// New requests handed to this replica's deliverer in memory so far (the rest were
    /// found by its poll), as /metrics reports them.
    pub fn handed_over(&self) -> u64 {
        self.handoff.handed_over()
    }

    /// A place with this replica's deliverer for a new request on `surface`, whose first
    /// delivery row is then stored claimed by `owner` (`crate::outbox::handoff`); `None` when
    /// no surface here shows it or the deliverer is not running or has no room.
    pub fn reserve(
        &self,
        surface: Surface,
        owner: &str,
        lease_ms: i64,
    ) -> Option<crate::outbox::handoff::Reserved<'_>> {
        if !self.map.contains_key(&surface) {
            return None;
        }
        self.handoff.reserve(owner, lease_ms)
    }

    /// An event of `request` was stored: wake the deliverer if a surface shows it.
    pub fn deliver(&self, request: &RequestRecord, _event: &Event) {
        if self.map.contains_key(&request.surface) {
            self.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{as_of, take_share_flag};
    use crate::{
        domain::{RequestId, State, Surface},
        events::EventData,
        store::{Event, EventKind, RequestRecord},
    };

    fn record(state: State, outcome: Option<&str>) -> RequestRecord {
        RequestRecord {
            id: RequestId::parse("r-2p7y50wwdve1wp").expect("id"),
            command: "deploy".into(),
            action: "deploy".into(),
            text: "deploy web:1 to dev3".into(),
            args: Default::default(),
            state,
            requester: "alice".into(),
            requester_groups: Vec::new(),
            surface: Surface::Slack,
            channel: Some("C1".into()),
            thread: None,
            surface_data: None,
            approval: None,
            approval_expires_at: None,
            created_at: 1,
            updated_at: 1,
            started_at: None,
            finished_at: None,
            worker: None,
            lease_until: None,
            attempts: 0,
            outcome: outcome.map(str::to_owned),
        }
    }

    fn state_event(seq: i64, state: State, outcome: Option<&str>) -> Event {
        Event {
            request_id: RequestId::parse("r-2p7y50wwdve1wp").expect("id"),
            seq,
            at: seq,
            kind: EventKind::State,
            message: outcome.unwrap_or(state.as_str()).to_owned(),
            data: EventData::state(state, outcome.map(str::to_owned), None),
        }
    }

    #[test]
    fn a_late_post_shows_the_outcome_its_event_carries_even_from_an_older_record() {
        // The record was read while the request ran; its events, read after, end it.
        let read_while_running = record(State::Running, None);
        let events = [
            state_event(1, State::Queued, None),
            state_event(2, State::Running, None),
            state_event(3, State::Succeeded, Some("done with dev3")),
        ];
        let shown = as_of(&read_while_running, &events, 3);
        assert_eq!(shown.state, State::Succeeded);
        assert_eq!(shown.outcome.as_deref(), Some("done with dev3"));
        // Shown as of an earlier event, a finished request has no outcome yet.
        let finished = record(State::Succeeded, Some("done with dev3"));
        let earlier = as_of(&finished, &events, 2);
        assert_eq!((earlier.state, earlier.outcome), (State::Running, None));
    }

    #[test]
    fn a_trailing_share_flag_is_taken_off() {
        for (text, rest, shared) in [
            ("whoami --share", "whoami", true),
            ("status shop in web   --share  ", "status shop in web", true),
            ("--share", "", true),
            ("whoami", "whoami", false),
            ("logs x in y--share", "logs x in y--share", false),
            ("deploy --share to web", "deploy --share to web", false),
        ] {
            let mut t = text.to_owned();
            assert_eq!(take_share_flag(&mut t), shared, "{text}");
            assert_eq!(t, rest, "{text}");
        }
    }
}
