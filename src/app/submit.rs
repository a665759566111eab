//! One command's way in: routed, its action's facts looked up in time for the platforms'
//! deadlines, the approval rule applied, then stored with its first events (and prompt) in
//! one commit before anything is acknowledged; then it waits for approval, runs at once
//! (inline actions) or wakes the worker.

use std::{sync::Arc, time::Instant};

use super::{App, AppError, Invocation, Submitted, inline::inline_budget};
use crate::{
    actions::Action,
    commands::{Routed, spec::Answer},
    domain::{State, format_ms, now_ms},
    events::ApprovalRequest,
    identity::Principal,
    store::{Actor, Event, NewRequest, RequestRecord},
};

impl App {
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
        let new = self.new_request(&mut inv, routed, action.as_ref()).await?;
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
            None => self.announce_all(&request, &first_events),
        }
        let request = if request.approval.is_some() {
            request
        } else if action.inline() {
            self.start_inline(request, inline_budget(inv.surface, arrived)).await
        } else {
            self.work_queued();
            request
        };
        Ok(Submitted {
            request,
            duplicate: false,
        })
    }

    /// The request to store: its state, and the approval it waits for with its prompt.
    /// Takes the invocation's channel, thread, key and surface data into it.
    async fn new_request(
        &self,
        inv: &mut Invocation,
        routed: Routed,
        action: &dyn Action,
    ) -> Result<NewRequest, AppError> {
        let facts = self.facts_in_time(action, &routed, &inv.principal).await?;
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
        Ok(NewRequest {
            command: routed.spec.name.clone(),
            action: routed.spec.action.clone(),
            text: crate::commands::router::normalize(&inv.text),
            args: routed.args,
            state,
            requester: inv.principal.user.clone(),
            requester_groups: inv.principal.groups.iter().cloned().collect(),
            surface: inv.surface,
            channel: inv.channel.take(),
            thread: inv.thread.take(),
            idempotency_key: inv.idempotency_key.take(),
            surface_data: inv.surface_data.take(),
            approval_expires_at,
            approval,
            prompt,
        })
    }

    /// What the action tells the approval rules (an environment's tier, say). Chat
    /// platforms want an answer within 3 seconds; a lookup that takes longer is better
    /// refused than acknowledged late.
    async fn facts_in_time(
        &self,
        action: &dyn Action,
        routed: &Routed,
        who: &Principal,
    ) -> Result<std::collections::BTreeMap<String, String>, AppError> {
        match tokio::time::timeout(FACTS_TIMEOUT, action.facts(self, &routed.args, who)).await {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(e)) => Err(AppError::Precondition(e.to_string())),
            Err(_) => Err(AppError::Precondition(
                "looking up the target took too long; try again".into(),
            )),
        }
    }

    fn announce_all(&self, request: &RequestRecord, events: &[Event]) {
        for event in events {
            self.announce(request, event);
        }
    }

    /// Runs a stored inline request here within `budget`; the request as it stands then.
    async fn start_inline(self: &Arc<Self>, request: RequestRecord, budget: std::time::Duration) -> RequestRecord {
        match self.claim(&request.id).await {
            Ok(Some(claimed)) => self.run_inline(claimed, budget).await.unwrap_or(request),
            // A worker (here or on another replica) claimed it first: wait for its end
            // within the same budget.
            Ok(None) => self.await_end(&request.id, budget).await.unwrap_or(request),
            Err(e) => {
                tracing::warn!(request = %request.id, error = %e, "could not claim an inline request; the worker will run it");
                self.work_queued();
                request
            }
        }
    }
}

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
