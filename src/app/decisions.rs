//! Decisions on a request: who may approve it, approving, denying, cancelling, expiring.
//! Each decision is a compare-and-set written with its event and audit row; a decision whose
//! state change was lost to a crash is moved on by `recovery`.

use std::sync::Arc;

use super::{App, AppError, Approved};
use crate::{
    domain::{RequestId, State, now_ms},
    identity::Principal,
    store::{Actor, Patch, RequestRecord, StoreError},
};

impl App {
    /// Whether `who` may approve or deny `request` under the rule stored with it.
    pub fn may_approve(&self, who: &Principal, request: &RequestRecord) -> Result<(), AppError> {
        let Some(policy) = request
            .approval
            .as_ref()
            .filter(|_| request.state == State::PendingApproval)
        else {
            return Err(AppError::WrongState {
                id: request.id.clone(),
                state: request.state,
                verb: "approved or denied",
            });
        };
        if !who.is_any(&policy.approvers) {
            return Err(AppError::NotApprover {
                user: who.user.clone(),
                id: request.id.clone(),
                approvers: policy
                    .approvers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if who.user == request.requester && !policy.self_approve {
            return Err(AppError::SelfApproval(request.id.clone()));
        }
        Ok(())
    }

    pub(super) async fn check_decision(&self, id: &RequestId, who: &Principal) -> Result<RequestRecord, AppError> {
        let request = self.get(id).await?;
        if request.state == State::PendingApproval && request.approval_expires_at.is_some_and(|t| t < now_ms()) {
            self.expire(id).await?;
            return Err(AppError::Expired(id.clone()));
        }
        self.may_approve(who, &request)?;
        Ok(request)
    }

    /// Counts `who`'s approval; the request moves on once enough distinct people approved.
    /// Any number of concurrent calls move it at most once.
    pub async fn approve(
        self: &Arc<Self>,
        id: &RequestId,
        who: &Principal,
        surface: &str,
    ) -> Result<Approved, AppError> {
        let request = self.check_decision(id, who).await?;
        let needed = request.approval.as_ref().map_or(1, |p| p.count);
        let Some((approvals, event)) = self
            .store
            .record_decision(id, &who.user, true, None, surface, needed)
            .await?
        else {
            return Err(AppError::AlreadyDecided(id.clone()));
        };
        self.announce(&request, &event);
        if approvals < i64::from(needed) {
            return Ok(Approved {
                request: self.get(id).await?,
                approvals,
                needed,
            });
        }
        let actor = Actor {
            who: &who.user,
            surface,
        };
        let message = format!("approved ({approvals} of {needed}); queued");
        match self
            .transition(
                id,
                &[State::PendingApproval],
                State::Queued,
                actor,
                &message,
                Patch::default(),
            )
            .await?
        {
            Some(queued) => {
                self.metrics
                    .approval_granted((now_ms() - queued.created_at) as f64 / 1000.0);
                self.work_queued();
                Ok(Approved {
                    request: queued,
                    approvals,
                    needed,
                })
            }
            // Someone else's approval (or a denial) moved it first; report where it is.
            None => Ok(Approved {
                request: self.get(id).await?,
                approvals,
                needed,
            }),
        }
    }

    pub async fn deny(
        &self,
        id: &RequestId,
        who: &Principal,
        reason: &str,
        surface: &str,
    ) -> Result<RequestRecord, AppError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AppError::ReasonRequired);
        }
        let request = self.check_decision(id, who).await?;
        let needed = request.approval.as_ref().map_or(1, |p| p.count);
        let Some((_, event)) = self
            .store
            .record_decision(id, &who.user, false, Some(reason), surface, needed)
            .await?
        else {
            return Err(AppError::AlreadyDecided(id.clone()));
        };
        self.announce(&request, &event);
        let actor = Actor {
            who: &who.user,
            surface,
        };
        let patch = Patch {
            outcome: Some(format!("denied by {}: {reason}", who.user)),
            ..Default::default()
        };
        match self
            .transition(id, &[State::PendingApproval], State::Denied, actor, "denied", patch)
            .await?
        {
            Some(r) => Ok(r),
            None => {
                let r = self.get(id).await?;
                Err(AppError::WrongState {
                    id: r.id,
                    state: r.state,
                    verb: "denied",
                })
            }
        }
    }

    /// Cancels a request that has not ended. A running action is told to stop; its state is
    /// `cancelled` at once, so whatever it reports afterwards cannot flip it back.
    pub async fn cancel(
        &self,
        id: &RequestId,
        who: &Principal,
        surface: &str,
    ) -> Result<(RequestRecord, State), AppError> {
        let request = self.get(id).await?;
        let approver = request.approval.as_ref().is_some_and(|p| who.is_any(&p.approvers));
        if request.requester != who.user && !approver {
            return Err(AppError::NotYours(id.clone()));
        }
        if request.state.is_terminal() {
            return Err(AppError::WrongState {
                id: id.clone(),
                state: request.state,
                verb: "cancelled",
            });
        }
        let actor = Actor {
            who: &who.user,
            surface,
        };
        let patch = Patch {
            outcome: Some(format!("cancelled by {}", who.user)),
            ..Default::default()
        };
        let from = [State::PendingApproval, State::Queued, State::Running];
        match self
            .transition(id, &from, State::Cancelled, actor, "cancelled", patch)
            .await?
        {
            Some(r) => {
                if let Some(token) = self.running.lock().ok().and_then(|m| m.get(id).cloned()) {
                    token.cancel();
                }
                Ok((r, request.state))
            }
            None => {
                let r = self.get(id).await?;
                Err(AppError::WrongState {
                    id: r.id,
                    state: r.state,
                    verb: "cancelled",
                })
            }
        }
    }

    pub async fn expire(&self, id: &RequestId) -> Result<Option<RequestRecord>, StoreError> {
        let patch = Patch {
            outcome: Some("no decision before the approval deadline".into()),
            ..Default::default()
        };
        self.transition(
            id,
            &[State::PendingApproval],
            State::Expired,
            Actor::WORKER,
            "approval expired",
            patch,
        )
        .await
    }
}
