//! The core every surface calls: submit, approve, deny, cancel, and running an action.
//! Adapters (HTTP API, Slack, Discord) turn their payloads into these calls; nothing here
//! knows about any platform.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::Instant,
};

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::{
    actions::{ActionContext, ActionError, ActionRegistry},
    cluster::Cluster,
    commands::{RouteError, Router, spec::Answer},
    configuration::Config,
    domain::{HumanDuration, RequestId, State, Surface, format_ms, now_ms},
    events::{ApprovalRequest, EventData},
    identity::{Directory, Principal},
    metrics::Metrics,
    signing::Signer,
    store::{Actor, Event, NewRequest, Patch, RequestRecord, Store, StoreError},
    surface::Surfaces,
};

mod decisions;
mod inline;
mod recovery;

use inline::inline_budget;

const FACTS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The approval prompt stored with a request that needs one: what it waits for, and the
/// typed data the surfaces build their buttons from.
fn approval_prompt(
    policy: &crate::commands::ApprovalPolicy,
    rule: Option<String>,
    expires_at: Option<i64>,
    detail: Option<String>,
) -> (String, ApprovalRequest) {
    let approvers: Vec<String> = policy.approvers.iter().map(ToString::to_string).collect();
    let message = format!(
        "Waiting for approval by {} of {}{} (expires {}){}",
        policy.count,
        approvers.join(", "),
        rule.as_deref().map(|r| format!(" because {r}")).unwrap_or_default(),
        expires_at.map(format_ms).unwrap_or_default(),
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    );
    let data = ApprovalRequest {
        approvers,
        count: policy.count,
        rule,
        expires_at,
        detail,
    };
    (message, data)
}

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

    /// The path of one request: route, store (before any acknowledgement), then either wait
    /// for approval, run at once (inline actions) or wake the worker.
    pub async fn submit(self: &Arc<Self>, mut inv: Invocation) -> Result<Submitted, AppError> {
        let arrived = Instant::now();
        let shared = crate::surface::take_share_flag(&mut inv.text);
        let routed = self.router.route(&inv.principal, &inv.text)?;
        if routed.spec.answer == Answer::Private && !shared {
            crate::surface::mark_private_answer(&mut inv.surface_data);
        }
        let action = self
            .actions
            .get(&routed.spec.action)
            .cloned()
            .ok_or_else(|| AppError::NoAction(routed.spec.action.clone()))?;
        // Chat platforms want an answer within 3 seconds; a lookup that takes longer is
        // better refused than acknowledged late.
        let facts = match tokio::time::timeout(FACTS_TIMEOUT, action.facts(self, &routed.args, &inv.principal)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return Err(AppError::Precondition(e.to_string())),
            Err(_) => {
                return Err(AppError::Precondition(
                    "looking up the target took too long; try again".into(),
                ));
            }
        };
        let approval = routed.approval(&inv.principal, inv.surface, &facts);
        let state = if approval.is_some() {
            State::PendingApproval
        } else {
            State::Queued
        };
        let approval_expires_at = approval.as_ref().map(|a| now_ms() + a.expires.as_millis_i64());
        let prompt = approval.as_ref().map(|policy| {
            let rule = routed.approval_rule_text();
            approval_prompt(
                policy,
                rule,
                approval_expires_at,
                action.approval_detail(self, &routed.args),
            )
        });
        let new = NewRequest {
            command: routed.spec.name.clone(),
            action: routed.spec.action.clone(),
            text: crate::commands::router::normalize(&inv.text),
            args: routed.args,
            state,
            requester: inv.principal.user.clone(),
            requester_groups: inv.principal.groups.iter().cloned().collect(),
            surface: inv.surface,
            channel: inv.channel,
            thread: inv.thread,
            idempotency_key: inv.idempotency_key,
            surface_data: inv.surface_data,
            approval_expires_at,
            approval,
            prompt,
        };
        let actor = Actor {
            who: &inv.principal.user,
            surface: inv.surface.as_str(),
        };
        let handoff = self
            .surfaces
            .reserve(new.surface, &self.worker_id, self.config.delivery.lease.as_millis_i64());
        let lease = handoff.as_ref().map(|h| h.lease());
        let (request, created, first_events) = self.store.insert_request(&new, actor, lease).await?;
        if !created {
            return Ok(Submitted {
                request,
                duplicate: true,
            });
        }
        // The first events (and an approval prompt) were stored with the request. From here
        // on the request is stored: a store error is the request's to report, never a "could
        // not store" that invites a second submission.
        match handoff {
            // The deliverer has them already: local streams are told, no poll is woken.
            Some(handoff) => {
                for _ in &first_events {
                    let _ = self.events.send(request.id.clone());
                }
                handoff.hand_over(request.clone(), first_events);
            }
            None => {
                for event in &first_events {
                    self.announce(&request, event);
                }
            }
        }
        if request.approval.is_some() {
            return Ok(Submitted {
                request,
                duplicate: false,
            });
        }
        if action.inline() {
            let budget = inline_budget(inv.surface, arrived);
            let request = match self.claim(&request.id).await {
                Ok(Some(claimed)) => self.run_inline(claimed, budget).await.unwrap_or(request),
                // A worker (here or on another replica) claimed it first: wait for its end
                // within the same budget.
                Ok(None) => self.await_end(&request.id, budget).await.unwrap_or(request),
                Err(e) => {
                    tracing::warn!(request = %request.id, error = %e, "could not claim an inline request; the worker will run it");
                    self.work_queued();
                    request
                }
            };
            return Ok(Submitted {
                request,
                duplicate: false,
            });
        }
        self.work_queued();
        Ok(Submitted {
            request,
            duplicate: false,
        })
    }

    /// queued -> running for this worker; `None` if another worker or replica got it.
    pub async fn claim(&self, id: &RequestId) -> Result<Option<RequestRecord>, StoreError> {
        let lease = now_ms() + self.config.worker.lease.as_millis_i64();
        let patch = Patch {
            claim: Some((self.worker_id.clone(), lease)),
            ..Default::default()
        };
        self.transition(id, &[State::Queued], State::Running, Actor::WORKER, "running", patch)
            .await
    }

    /// Runs a claimed request to its end, renewing the lease while it runs.
    pub async fn execute(self: &Arc<Self>, request: RequestRecord) -> Result<RequestRecord, StoreError> {
        let id = request.id.clone();
        let started = Instant::now();
        let token = CancellationToken::new();
        if let Ok(mut m) = self.running.lock() {
            m.insert(id.clone(), token.clone());
        }
        let result = match (
            self.actions.get(&request.action).cloned(),
            // The configuration says who the requester is now; the stored groups add what
            // the chat platform said when they asked (a Slack user group, a Discord role).
            self.directory.user(&request.requester).map(|mut p| {
                p.groups.extend(request.requester_groups.iter().cloned());
                p
            }),
        ) {
            (None, _) => Err(ActionError::Failed(format!(
                "this build has no action '{}'",
                request.action
            ))),
            (_, None) => Err(ActionError::Failed(format!(
                "the requester '{}' is no longer in the configuration",
                request.requester
            ))),
            (Some(action), Some(principal)) => {
                let ctx = ActionContext {
                    app: self.clone(),
                    request: request.clone(),
                    principal,
                    cancel: token.clone(),
                };
                tokio::select! {
                    r = action.run(&ctx) => r,
                    _ = self.keep_lease(&id, &token) => Err(ActionError::Cancelled),
                }
            }
        };
        if let Ok(mut m) = self.running.lock() {
            m.remove(&id);
        }
        let (to, outcome) = match &result {
            Ok(summary) => (State::Succeeded, summary.clone()),
            Err(ActionError::Cancelled) => (State::Cancelled, "cancelled".to_owned()),
            Err(e) => (State::Failed, e.to_string()),
        };
        self.metrics
            .action_finished(&request.action, to.as_str(), started.elapsed().as_secs_f64());
        let patch = Patch {
            outcome: Some(outcome.clone()),
            ..Default::default()
        };
        let done = self
            .transition(&id, &[State::Running], to, Actor::WORKER, &outcome, patch)
            .await?;
        match done {
            Some(r) => Ok(r),
            // Cancelled (or taken over) while running: the stored state stands.
            None => Ok(self.store.get(&id).await?.unwrap_or(request)),
        }
    }

    /// Renews the lease until the action ends; returns only when the request stopped being
    /// ours (cancelled, or the lease was lost), which stops the action.
    async fn keep_lease(&self, id: &RequestId, token: &CancellationToken) {
        let lease: HumanDuration = self.config.worker.lease;
        let every = (lease.as_duration() / 3).max(std::time::Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let until = now_ms() + lease.as_millis_i64();
            match self.store.renew_lease(id, &self.worker_id, until).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(request = %id, error = %e, "could not renew lease"),
            }
        }
    }
}
