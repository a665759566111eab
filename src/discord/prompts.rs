//! A request's state and its approval prompt on Discord: the status message follows the
//! state; the prompt (a follow-up with Approve / Deny, mentioning the approvers) is edited
//! as people decide and closed when nobody did. The words come from `crate::chat::text`,
//! built from the events' typed data.

use serenity::builder::CreateActionRow;

use super::{
    buttons,
    markup::{DiscordMarkup, escape},
    publish::{DiscordSurface, err},
    render::{self, message_body, prompt_body, state_icon, status_text},
    state::DiscordState,
};
use crate::{
    chat::text,
    domain::{State, now_ms},
    events::{ApprovalRequest, Decision, StateChange},
    store::{RequestRecord, Store},
    surface::SurfaceError,
};

impl DiscordSurface {
    fn markup(&self) -> DiscordMarkup<'_> {
        DiscordMarkup(&self.mentions)
    }

    pub(super) async fn on_state(
        &self,
        store: &Store,
        record: &RequestRecord,
        change: &StateChange,
        st: &mut DiscordState,
    ) -> Result<(), SurfaceError> {
        let state = change.state;
        let line = if text::shows_finished(state, st.output_shown) {
            format!("{} {}", state_icon(state), text::finished(record, now_ms()))
        } else {
            render::state_line(change)
        };
        self.edit_status(st, &status_text(record, &line)).await?;
        if let Some(line) = text::closed_summary(&self.markup(), state, change.outcome.as_deref()) {
            self.close_buttons(store, record, st, &line).await?;
        }
        Ok(())
    }

    /// The request waits: the status says so, and the prompt goes in a follow-up of its own.
    pub(super) async fn on_prompt(
        &self,
        record: &RequestRecord,
        ask: &ApprovalRequest,
        st: &mut DiscordState,
    ) -> Result<(), SurfaceError> {
        let line = format!("{} waiting for approval", state_icon(State::PendingApproval));
        self.edit_status(st, &status_text(record, &line)).await?;
        let body = prompt(&self.markup(), &self.signer, record, ask);
        let id = self.post(st, &body).await?;
        st.approval_message_id = Some(id);
        Ok(())
    }

    /// One decision, in the prompt; its buttons go once the decision settles the request.
    pub(super) async fn on_decision(
        &self,
        record: &RequestRecord,
        d: &Decision,
        st: &mut DiscordState,
    ) -> Result<(), SurfaceError> {
        let needed = record.approval.as_ref().map_or(1, |p| p.count);
        let Some(id) = st.approval_message_id.clone() else {
            let content = decision_content(&self.markup(), record, d, needed);
            self.post(st, &message_body(&content, None)).await?;
            return Ok(());
        };
        let body = decision_body(&self.markup(), &self.signer, record, d, needed);
        self.edit(st, &id, &body).await
    }

    /// Takes the buttons off a request nobody decided on (it expired or was cancelled).
    async fn close_buttons(
        &self,
        store: &Store,
        record: &RequestRecord,
        st: &mut DiscordState,
        line: &str,
    ) -> Result<(), SurfaceError> {
        let Some(id) = st.approval_message_id.clone() else {
            return Ok(());
        };
        let needed = record.approval.as_ref().map_or(1, |p| p.count);
        let decisions = text::decisions(&store.approvals(&record.id).await.map_err(err)?, needed);
        if decisions.iter().any(Decision::settles) {
            return Ok(()); // the message already says who decided
        }
        self.edit(st, &id, &closed_body(record, line)).await
    }
}

/// The approval prompt: who asks for what, who may approve (mentioned, and allowed to be
/// pinged), which rule asked and when it expires; Approve / Deny under it.
pub fn prompt(
    m: &DiscordMarkup<'_>,
    signer: &crate::signing::Signer,
    record: &RequestRecord,
    ask: &ApprovalRequest,
) -> serde_json::Value {
    let content = format!(
        "{} asks to run {} ({}).\n{}",
        m.0.user_id(&record.requester)
            .filter(|id| super::markup::is_snowflake(id))
            .map_or_else(|| escape(&record.requester), |id| format!("<@{id}>")),
        escape(&record.text),
        record.id,
        text::prompt_lines(m, ask).join("\n")
    );
    let (users, roles) = m.0.approver_ids(&ask.approvers);
    let keep =
        |ids: Vec<String>| -> Vec<String> { ids.into_iter().filter(|i| super::markup::is_snowflake(i)).collect() };
    let row = [buttons::approval_row(signer, &record.id)];
    prompt_body(&content, Some(&row), &keep(users), &keep(roles))
}

/// The prompt after a decision: who decided; the buttons stay until one settles it.
pub fn decision_body(
    m: &DiscordMarkup<'_>,
    signer: &crate::signing::Signer,
    record: &RequestRecord,
    d: &Decision,
    needed: u32,
) -> serde_json::Value {
    let content = decision_content(m, record, d, needed);
    let settles = Decision {
        needed: d.needed.or(Some(needed)),
        ..d.clone()
    }
    .settles();
    let row = [buttons::approval_row(signer, &record.id)];
    let components: &[CreateActionRow] = if settles { &[] } else { &row };
    message_body(&content, Some(components))
}

/// The prompt of a request nobody decided on, buttons gone: `line` says why (expired,
/// cancelled; already Discord text).
pub fn closed_body(record: &RequestRecord, line: &str) -> serde_json::Value {
    let content = format!("{} ({}): {line}", escape(&record.text), record.id);
    message_body(&content, Some(&[]))
}

/// "deploy shop (r-…): ✅ olga approved (1 of 2)".
pub fn decision_content(m: &DiscordMarkup<'_>, record: &RequestRecord, d: &Decision, needed: u32) -> String {
    format!(
        "{} ({}): {}",
        escape(&record.text),
        record.id,
        text::decision_summary(m, d, needed)
    )
}
