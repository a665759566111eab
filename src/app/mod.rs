//! The core every surface calls: submit, approve, deny, cancel, and running an action.
//! Adapters (HTTP API, Slack, Discord) turn their payloads into these calls; nothing here
//! knows about any platform.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
};

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::{
    actions::ActionRegistry,
    cluster::Cluster,
    commands::{RouteError, Router},
    configuration::Config,
    domain::{RequestId, State, Surface},
    events::EventData,
    identity::{Directory, Principal},
    metrics::Metrics,
    signing::Signer,
    store::{Actor, Event, Patch, RequestRecord, Store, StoreError},
    surface::Surfaces,
};

mod decisions;
mod execute;
mod inline;
mod recovery;
mod submit;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error("There is no request {0}. `requests` lists yours.")]
    NotFound(RequestId),
    #[error("{id} is {state}, so it cannot be {verb}.")]
    WrongState {
        id: RequestId,
        state: State,
        verb: &'static str,
    },
    #[error("You ({user}) cannot approve or deny {id}: that takes {approvers}.")]
    NotApprover {
        user: String,
        id: RequestId,
        approvers: String,
    },
    #[error("You asked for {0}, so someone else has to approve it.")]
    SelfApproval(RequestId),
    #[error("You already decided on {0}; each person counts once.")]
    AlreadyDecided(RequestId),
    #[error("{0} waited too long for approval and expired; submit it again.")]
    Expired(RequestId),
    #[error("Only the requester or one of its approvers can cancel {0}.")]
    NotYours(RequestId),
    #[error("Say why: a denial needs a reason.")]
    ReasonRequired,
    /// The command is well-formed but the world says no (no such environment, say).
    #[error("{0}")]
    Precondition(String),
    #[error("this build has no action '{0}'")]
    NoAction(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppError {
    /// A stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Route(r) => r.code(),
            AppError::NotFound(_) => "not_found",
            AppError::WrongState { .. } => "wrong_state",
            AppError::NotApprover { .. } | AppError::NotYours(_) => "forbidden",
            AppError::SelfApproval(_) => "self_approval",
            AppError::AlreadyDecided(_) => "already_decided",
            AppError::Expired(_) => "expired",
            AppError::ReasonRequired => "reason_required",
            AppError::Precondition(_) => "precondition",
            AppError::NoAction(_) | AppError::Store(_) => "internal",
        }
    }
}

/// One command as a surface received it, with the caller already identified.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub principal: Principal,
    pub surface: Surface,
    pub text: String,
    pub channel: Option<String>,
    pub thread: Option<String>,
    /// Anything the surface wants back when it reports on this request.
    pub surface_data: Option<serde_json::Value>,
    /// The platform's delivery id (or a client's Idempotency-Key): the same key never
    /// creates a second request.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub request: RequestRecord,
    /// True when the key matched an earlier submission and nothing new was created.
    pub duplicate: bool,
}

impl Submitted {
    /// Whether chat answers the person alone (see `surface::is_private_answer`).
    pub fn private_answer(&self) -> bool {
        crate::surface::is_private_answer(&self.request)
    }
}

#[derive(Debug, Clone)]
pub struct Approved {
    pub request: RequestRecord,
    pub approvals: i64,
    pub needed: u32,
}

impl fmt::Display for Approved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.request.state == State::PendingApproval {
            write!(
                f,
                "{}: {} of {} approvals",
                self.request.id, self.approvals, self.needed
            )
        } else {
            write!(f, "{} approved; it is {}", self.request.id, self.request.state)
        }
    }
}

/// The configured signing key, or a random one for this process.
pub fn signer_for(config: &Config) -> Signer {
    if config.server.signing_key.is_empty() {
        Signer::new(crate::domain::new_token(43).as_bytes())
    } else {
        Signer::new(config.server.signing_key.as_bytes())
    }
}

pub struct App {
    pub config: Arc<Config>,
    pub directory: Directory,
    pub router: Router,
    pub store: Store,
    pub actions: ActionRegistry,
    pub surfaces: Surfaces,
    pub metrics: Metrics,
    /// Wakes the local worker when something is queued.
    pub wake: Notify,
    /// Says "request X has new events" to local event streams.
    pub events: broadcast::Sender<RequestId>,
    pub worker_id: String,
    /// The default cluster (the only one without `clusters` tables); actions on an
    /// environment ask `clusters.locate(env)` for its own.
    pub cluster: Arc<Cluster>,
    pub clusters: crate::cluster::clusters::Clusters,
    /// Signs button payloads handed to chat platforms.
    pub signer: Signer,
    /// Shell sessions relayed by this process, ended on record at shutdown.
    pub shells: crate::shell::LiveSessions,
    /// Proxy links looked up lately and hits not yet written.
    pub proxies: crate::proxy::Gate,
    running: Mutex<HashMap<RequestId, CancellationToken>>,
}

impl App {
    pub fn new(
        config: Arc<Config>,
        router: Router,
        store: Store,
        actions: ActionRegistry,
        surfaces: Surfaces,
        signer: Signer,
    ) -> Self {
        let clusters = crate::cluster::clusters::Clusters::from_config(&config);
        Self {
            cluster: clusters.default_cluster(),
            clusters,
            signer,
            directory: Directory::from_config(&config),
            config,
            router,
            store,
            actions,
            surfaces,
            metrics: Metrics::default(),
            shells: Default::default(),
            proxies: Default::default(),
            wake: Notify::new(),
            events: broadcast::channel(1024).0,
            worker_id: format!("w-{}", crate::domain::new_token(8)),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Stores an event, tells local streams, and hands it to the request's surface.
    pub async fn emit(&self, request: &RequestRecord, message: &str, data: EventData) -> Result<Event, StoreError> {
        let event = self.store.append_event(&request.id, message, data).await?;
        self.announce(request, &event);
        Ok(event)
    }

    fn announce(&self, request: &RequestRecord, event: &Event) {
        let _ = self.events.send(request.id.clone());
        self.surfaces.deliver(request, event);
    }

    /// A state change through the store's compare-and-set, announced like any event.
    async fn transition(
        &self,
        id: &RequestId,
        from: &[State],
        to: State,
        actor: Actor<'_>,
        message: &str,
        patch: Patch,
    ) -> Result<Option<RequestRecord>, StoreError> {
        let Some((record, event)) = self.store.transition(id, from, to, actor, message, patch).await? else {
            return Ok(None);
        };
        self.announce(&record, &event);
        Ok(Some(record))
    }

    pub async fn get(&self, id: &RequestId) -> Result<RequestRecord, AppError> {
        self.store.get(id).await?.ok_or_else(|| AppError::NotFound(id.clone()))
    }
}
