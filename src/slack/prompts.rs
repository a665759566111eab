//! The approval prompt in Slack: posted in the thread (and the approvals channel) when a
//! request waits, updated as people decide, closed when the request moves on. Its words
//! come from `crate::chat::text`, built from the events' typed data.

use slack_morphism::SlackMessageContent;

use super::{
    data::{Posted, SlackData},
    messages,
    surface::Inner,
    web::WebError,
};
use crate::{
    chat::text,
    domain::State,
    events::{ApprovalRequest, Decision, EventData},
    store::{Event, RequestRecord, Store},
};

impl Inner {
    pub(super) async fn on_state(
        &self,
        store: &Store,
        request: &RequestRecord,
        event: &Event,
        data: &mut SlackData,
        root: &str,
    ) -> Result<(), WebError> {
        self.update_root(request, data, root).await?;
        if data.prompt_open && request.state != State::PendingApproval {
            let line = self.closing_line(store, request, data).await;
            let summary = data.prompt_summary.clone().unwrap_or_default();
            self.update_prompts(data, messages::decided_content(&summary, &line))
                .await?;
            data.prompt_open = false;
        }
        // Success is shown by the root message (and any output by its own reply); a reply
        // is for what needs someone's attention.
        if let Some(text) = messages::state_reply(request, &event.data) {
            self.reply(&data.channel, root, &text).await?;
        }
        Ok(())
    }

    /// What a closed prompt says: who decided, from the store's approvals table (the one
    /// complete list: decisions made on another surface or replica are there even when
    /// this thread never saw their events), or that nobody did.
    async fn closing_line(&self, store: &Store, request: &RequestRecord, data: &SlackData) -> String {
        let needed = request.approval.as_ref().map_or(1, |p| p.count);
        let decided: Vec<String> = match store.approvals(&request.id).await {
            Ok(records) => text::decisions(&records, needed)
                .iter()
                .map(|d| text::decision_summary(&self.markup(), d, needed))
                .collect(),
            Err(e) => {
                tracing::warn!(request = %request.id, error = %e, "could not read decisions");
                data.decisions.clone()
            }
        };
        if !decided.is_empty() {
            return decided.join("\n");
        }
        text::closed_summary(&self.markup(), request.state, request.outcome.as_deref())
            .unwrap_or_else(|| request.state.to_string())
    }

    pub(super) async fn on_approval(
        &self,
        request: &RequestRecord,
        event: &Event,
        data: &mut SlackData,
        root: &str,
    ) -> Result<(), WebError> {
        match &event.data {
            EventData::ApprovalRequested(ask) => self.post_prompt(request, ask, data, root).await,
            EventData::Decision(d) => self.on_decision(request, d, data).await,
            _ => Ok(()),
        }
    }

    /// The request is waiting: post the prompt (once), in the thread and the approvals
    /// channel.
    async fn post_prompt(
        &self,
        request: &RequestRecord,
        ask: &ApprovalRequest,
        data: &mut SlackData,
        root: &str,
    ) -> Result<(), WebError> {
        self.update_root(request, data, root).await?;
        if !data.prompts.is_empty() {
            return Ok(());
        }
        let lines = text::prompt_lines(&self.markup(), ask);
        let summary = messages::approval_summary(request, &self.requester(request, data), &lines);
        let content = messages::prompt_content(&self.signer, &request.id, &summary, None);
        let ts = self.post(&data.channel, Some(root), content.clone()).await?;
        data.prompts.push(Posted {
            channel: data.channel.clone(),
            ts,
        });
        if let Some(ch) = self.approvals_channel.clone().filter(|c| *c != data.channel) {
            let ts = self.post(&ch, None, content).await?;
            data.prompts.push(Posted { channel: ch, ts });
        }
        data.prompt_summary = Some(summary);
        data.prompt_open = true;
        Ok(())
    }

    /// One decision: with more approvals to come, the prompt keeps its buttons and shows
    /// who approved so far; a settling decision is shown when the state changes.
    async fn on_decision(&self, request: &RequestRecord, d: &Decision, data: &mut SlackData) -> Result<(), WebError> {
        let needed = request.approval.as_ref().map_or(1, |p| p.count);
        data.decisions.push(text::decision_summary(&self.markup(), d, needed));
        let settles = Decision {
            needed: d.needed.or(Some(needed)),
            ..d.clone()
        }
        .settles();
        if settles || !data.prompt_open {
            return Ok(());
        }
        let summary = data.prompt_summary.clone().unwrap_or_default();
        let progress = data.decisions.join("\n");
        let content = messages::prompt_content(&self.signer, &request.id, &summary, Some(&progress));
        self.update_prompts(data, content).await
    }

    async fn update_prompts(&self, data: &SlackData, content: SlackMessageContent) -> Result<(), WebError> {
        for p in data.prompts.clone() {
            self.update(&p.channel, &p.ts, content.clone()).await?;
        }
        Ok(())
    }
}
