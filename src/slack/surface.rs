//! `ChatSurface` for Slack: a root status message per request (edited in place), its thread
//! for milestones, progress, output and errors, and the approval prompt.
//!
//! What Slack needs to find the conversation again (channel, root ts, the prompts' ts) is
//! kept with the request through `Store::set_surface_data` and read back from the store on
//! every event: the record handed to `publish` may predate the latest write.

use std::{collections::HashMap, sync::Arc, time::Duration};

use super::{
    config::SlackConfig,
    messages, private,
    web::{WebApi, WebError},
};
use crate::{
    command_buttons::CommandButton,
    configuration::Config,
    domain::{State, Surface, format_ms},
    signing::Signer,
    store::{Event, EventKind, RequestRecord, Store},
    surface::{self, ChatSurface, Delivery, Shown, SurfaceError},
    visibility::Audience,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slack_morphism::{
    SlackChannelId, SlackMessageContent, SlackTs,
    api::{SlackApiChatPostMessageRequest, SlackApiChatUpdateRequest},
};

/// Where one approval prompt was posted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// The per-request Slack state kept in the store (`surface_data`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlackData {
    pub channel: String,
    /// The Slack user who asked.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub response_url: Option<String>,
    /// The root status message, once posted.
    #[serde(default)]
    pub root_ts: Option<String>,
    #[serde(default)]
    pub prompts: Vec<Posted>,
    #[serde(default)]
    pub prompt_summary: Option<String>,
    /// True while the prompts still show buttons.
    #[serde(default)]
    pub prompt_open: bool,
    /// Decisions so far, as lines for the prompt ("approved by @x at ...").
    #[serde(default)]
    pub decisions: Vec<String>,
    /// Set at submission for a read-only command (`surface::is_private_answer`); kept here
    /// so writing this state back keeps it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private_answer: bool,
    /// A private answer's output was sent (so its success needs no line of its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answered: bool,
    /// The latest progress line, shown in the root message while the request runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
}

impl SlackData {
    pub fn read(request: &RequestRecord) -> Option<Self> {
        serde_json::from_value(request.surface_data.clone()?).ok()
    }
}

pub struct SlackSurface {
    inner: Arc<Inner>,
}

struct Inner {
    web: WebApi,
    signer: Signer,
    approvals_channel: Option<String>,
    progress_interval: Duration,
    /// deckhand user name -> Slack user id, for naming approvers.
    slack_ids: HashMap<String, String>,
}

impl SlackSurface {
    pub fn new(config: &Config, signer: &Signer) -> Self {
        let slack: &SlackConfig = &config.slack;
        let slack_ids = config
            .users
            .iter()
            .filter_map(|(name, user)| {
                let id = user.identities.iter().find_map(|i| i.strip_prefix("slack:"))?;
                Some((name.to_string(), id.to_owned()))
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                web: WebApi::new(slack),
                signer: signer.clone(),
                approvals_channel: Some(slack.approvals_channel.clone()).filter(|c| !c.is_empty()),
                progress_interval: Duration::from_millis(slack.progress_interval_ms),
                slack_ids,
            }),
        }
    }
}

/// Slack's refusals (`ok: false`, 4xx) are permanent; outages, 5xx and rate limits that
/// outlasted the call are worth another try later.
fn refused(e: WebError) -> SurfaceError {
    if e.permanent() {
        SurfaceError::permanent(Surface::Slack, e)
    } else {
        SurfaceError::transient(Surface::Slack, e)
    }
}

fn unstored(e: crate::store::StoreError) -> SurfaceError {
    SurfaceError::transient(Surface::Slack, e)
}

impl SlackSurface {
    /// Runs `show` with the conversation's data read fresh from the store, and keeps what it
    /// learnt (the root ts, prompts) even when a later call failed.
    async fn with_data<F, Fut>(&self, store: &Store, request: &RequestRecord, show: F) -> Result<Shown, SurfaceError>
    where
        F: FnOnce(SlackData) -> Fut,
        Fut: std::future::Future<Output = (SlackData, Result<Shown, WebError>)>,
    {
        let current = store.get(&request.id).await.map_err(unstored)?;
        let Some(data) = current.as_ref().and_then(SlackData::read) else {
            // Not a Slack conversation (or from an older build); nothing to show.
            return Ok(None);
        };
        let before = serde_json::to_value(&data).unwrap_or(Value::Null);
        let (data, result) = show(data).await;
        let after = serde_json::to_value(&data).unwrap_or(Value::Null);
        if after != before {
            store.set_surface_data(&request.id, &after).await.map_err(unstored)?;
        }
        result.map_err(refused)
    }
}

#[async_trait]
impl ChatSurface for SlackSurface {
    fn surface(&self) -> Surface {
        Surface::Slack
    }

    async fn publish(&self, store: &Store, request: &RequestRecord, event: &Event) -> Result<Shown, SurfaceError> {
        let inner = self.inner.clone();
        self.with_data(store, request, |mut data| async move {
            let r = inner.publish(store, request, event, &mut data).await;
            (data, r)
        })
        .await
    }

    async fn show_progress(&self, store: &Store, request: &RequestRecord, line: &str) -> Result<Shown, SurfaceError> {
        let inner = self.inner.clone();
        self.with_data(store, request, |mut data| async move {
            let r = inner.progress(request, line, &mut data).await;
            (data, r)
        })
        .await
    }

    fn progress_interval(&self) -> Duration {
        self.inner.progress_interval
    }
}

impl Inner {
    fn name(&self, user: &str) -> String {
        messages::mention(self.slack_ids.get(user).map(String::as_str), user)
    }

    /// "Approved by @x at T" / "Denied by @y at T: reason".
    fn decision_line(&self, r: &crate::store::ApprovalRecord) -> String {
        let when = format_ms(r.at);
        if r.decision == "approve" {
            format!(":white_check_mark: Approved by {} at {when}", self.name(&r.approver))
        } else {
            let reason = r
                .reason
                .as_deref()
                .map(|x| format!(": {}", messages::escape(x)))
                .unwrap_or_default();
            format!(":no_entry: Denied by {} at {when}{reason}", self.name(&r.approver))
        }
    }

    /// The requester's Slack user id: the one who typed the command, else their identity.
    fn requester_id<'a>(&'a self, request: &RequestRecord, data: &'a SlackData) -> Option<&'a str> {
        data.user
            .as_deref()
            .or_else(|| self.slack_ids.get(&request.requester).map(String::as_str))
    }

    fn requester(&self, request: &RequestRecord, data: &SlackData) -> String {
        match &data.user {
            Some(u) => format!("<@{u}>"),
            None => self.name(&request.requester),
        }
    }

    /// The latest progress line goes into the root message (edited in place), not the thread.
    async fn progress(&self, request: &RequestRecord, line: &str, data: &mut SlackData) -> Result<Shown, WebError> {
        let root = self.ensure_root(request, data).await?;
        data.progress = Some(line.to_owned());
        self.update_root(request, data, &root).await?;
        Ok(Some(root))
    }

    /// Shows one event; the ts of the message it posted, or of the thread's root.
    async fn publish(
        &self,
        store: &Store,
        request: &RequestRecord,
        event: &Event,
        data: &mut SlackData,
    ) -> Result<Shown, WebError> {
        if surface::is_private_answer(request) {
            return self.answer_privately(request, event, data).await;
        }
        let root = self.ensure_root(request, data).await?;
        if let Delivery::Private(audience) = surface::delivery(event) {
            self.private(request, event, audience, data, &root).await?;
            return Ok(Some(root));
        }
        match event.kind {
            EventKind::State => self.on_state(store, request, event, data, &root).await?,
            EventKind::Approval => self.on_approval(request, event, data, &root).await?,
            EventKind::Progress => return self.progress(request, &event.message, data).await,
            EventKind::Output => {
                let ts = self
                    .post(&data.channel, Some(&root), self.output_content(event))
                    .await?;
                self.upload_attachment(store, event, &data.channel, &root).await?;
                return Ok(Some(ts));
            }
        }
        Ok(Some(root))
    }

    /// Sends a private event to the requester alone; the thread gets a line saying so.
    async fn private(
        &self,
        request: &RequestRecord,
        event: &Event,
        audience: Audience,
        data: &SlackData,
        root: &str,
    ) -> Result<(), WebError> {
        let content = self.output_content(event);
        let user = self.requester_id(request, data);
        let message = private::PrivateMessage {
            channel: &data.channel,
            thread_ts: Some(root),
            user,
            response_url: data.response_url.as_deref(),
            content,
        };
        let delivered = private::send(&self.web, message).await;
        let notice = surface::private_notice(request, audience, &self.requester(request, data), delivered);
        self.reply(&data.channel, root, &notice).await.map(|_| ())
    }

    /// An output event as a message: its text, and its command buttons if it has any.
    fn output_content(&self, event: &Event) -> SlackMessageContent {
        let buttons = CommandButton::from_data(event.data.as_ref());
        let content = SlackMessageContent::new().with_text(messages::output_text(&event.message));
        if buttons.is_empty() {
            return content;
        }
        content.with_blocks(messages::output_blocks(&self.signer, &event.message, &buttons))
    }

    /// A read-only command's answer, to the person alone: on the command's response_url
    /// (Slack's own answer to a slash command), else an ephemeral message in the channel.
    /// No root message, no thread.
    async fn answer_privately(
        &self,
        request: &RequestRecord,
        event: &Event,
        data: &mut SlackData,
    ) -> Result<Shown, WebError> {
        let (content, output) = match surface::private_answer(event, data.answered) {
            surface::PrivateAnswer::Nothing => return Ok(None),
            surface::PrivateAnswer::Output(e) => (self.output_content(e), true),
            surface::PrivateAnswer::Line(line) => {
                (SlackMessageContent::new().with_text(messages::escape(&line)), false)
            }
        };
        let user = self.requester_id(request, data);
        let message = private::PrivateMessage {
            channel: &data.channel,
            thread_ts: None,
            // The response_url first: it needs the bot in no channel.
            user: user.filter(|_| data.response_url.is_none()),
            response_url: data.response_url.as_deref(),
            content,
        };
        if !private::send(&self.web, message).await {
            return Err(WebError::Api {
                method: "response_url".into(),
                error: "could not answer the person privately".into(),
            });
        }
        data.answered |= output;
        Ok(None)
    }

    /// Uploads the file an output event announces (a load test's chart) into the thread.
    async fn upload_attachment(&self, store: &Store, event: &Event, channel: &str, root: &str) -> Result<(), WebError> {
        let Some(file) = crate::attachments::AttachmentRef::of_event(event.data.as_ref()) else {
            return Ok(());
        };
        match crate::attachments::Attachments::new(store.pool().clone())
            .get(&file.id)
            .await
        {
            Ok(Some(bytes)) => {
                self.web
                    .upload_file(channel, Some(root), &file.filename, &file.title, &bytes)
                    .await?;
            }
            Ok(None) => tracing::warn!(attachment = %file.id, "announced attachment is not stored"),
            Err(e) => tracing::warn!(attachment = %file.id, error = %e, "cannot read attachment"),
        }
        Ok(())
    }

    /// Posts the root message the first time anything happens to the request.
    async fn ensure_root(&self, request: &RequestRecord, data: &mut SlackData) -> Result<String, WebError> {
        if let Some(ts) = &data.root_ts {
            return Ok(ts.clone());
        }
        let text = messages::root_text(request, &self.requester(request, data), None);
        match self
            .post(&data.channel, None, SlackMessageContent::new().with_text(text))
            .await
        {
            Ok(ts) => {
                data.root_ts = Some(ts.clone());
                Ok(ts)
            }
            Err(e) => {
                // Most often the bot is not in a private channel; tell the person where
                // their request went instead of going silent.
                if let Some(url) = &data.response_url {
                    let note = format!(
                        "deckhand stored your request {} but cannot post in this channel ({e}). Invite the app (`/invite @deckhand`) or ask in a channel it is in; `request {}` shows its progress meanwhile.",
                        request.id, request.id
                    );
                    let _ = self.web.respond(url, &messages::ephemeral(&note)).await;
                }
                Err(e)
            }
        }
    }

    async fn on_state(
        &self,
        store: &Store,
        request: &RequestRecord,
        event: &Event,
        data: &mut SlackData,
        root: &str,
    ) -> Result<(), WebError> {
        self.update_root(request, data, root).await?;
        if data.prompt_open && request.state != State::PendingApproval {
            // Who decided comes from the store's approvals table, the one complete list:
            // decisions made on another surface or replica are there even when this
            // thread never saw their events.
            let decided: Vec<String> = match store.approvals(&request.id).await {
                Ok(records) => records.iter().map(|r| self.decision_line(r)).collect(),
                Err(e) => {
                    tracing::warn!(request = %request.id, error = %e, "could not read decisions");
                    data.decisions.clone()
                }
            };
            let line = match request.state {
                State::Expired => format!(
                    ":alarm_clock: Expired at {}: nobody decided in time",
                    format_ms(event.at)
                ),
                State::Cancelled if decided.is_empty() => format!(
                    ":heavy_minus_sign: {} at {}",
                    messages::escape(request.outcome.as_deref().unwrap_or("cancelled")),
                    format_ms(event.at)
                ),
                _ if decided.is_empty() => format!("{} at {}", request.state, format_ms(event.at)),
                _ => decided.join("\n"),
            };
            let summary = data.prompt_summary.clone().unwrap_or_default();
            let blocks = messages::decided_blocks(&summary, &line);
            for p in data.prompts.clone() {
                let content = SlackMessageContent::new()
                    .with_text(summary.clone())
                    .with_blocks(blocks.clone());
                self.update(&p.channel, &p.ts, content).await?;
            }
            data.prompt_open = false;
        }
        // Success is shown by the root message (and any output by its own reply); a reply
        // is for what needs someone's attention.
        if request.state.is_terminal() && request.state != State::Succeeded {
            let outcome = request.outcome.clone().unwrap_or_else(|| event.message.clone());
            let text = match request.state {
                State::Failed => format!(":x: Failed: {}", messages::escape(&outcome)),
                s => format!("{s}: {}", messages::escape(&outcome)),
            };
            self.reply(&data.channel, root, &messages::clip(&text, 35_000)).await?;
        }
        Ok(())
    }

    async fn on_approval(
        &self,
        request: &RequestRecord,
        event: &Event,
        data: &mut SlackData,
        root: &str,
    ) -> Result<(), WebError> {
        let d = event.data.clone().unwrap_or(Value::Null);
        if let Some(approvers) = d["approvers"].as_array() {
            // The request is waiting: post the prompt (once), in the thread and the
            // approvals channel.
            self.update_root(request, data, root).await?;
            if !data.prompts.is_empty() {
                return Ok(());
            }
            let approvers: Vec<String> = approvers.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
            let count = d["count"].as_u64().unwrap_or(1);
            let mut summary = messages::approval_summary(request, &self.requester(request, data), &approvers, count);
            if let Some(detail) = d["detail"].as_str() {
                summary = format!("{summary}\n{}", messages::escape(detail));
            }
            let blocks = messages::approval_blocks(&self.signer, &request.id, &summary, None);
            let content = SlackMessageContent::new()
                .with_text(summary.clone())
                .with_blocks(blocks);
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
            return Ok(());
        }
        if let Some(approver) = d["approver"].as_str() {
            let approve = d["decision"].as_str() == Some("approve");
            let when = format_ms(event.at);
            let line = if approve {
                format!(":white_check_mark: Approved by {} at {when}", self.name(approver))
            } else {
                let reason = d["reason"]
                    .as_str()
                    .map(|r| format!(": {}", messages::escape(r)))
                    .unwrap_or_default();
                format!(":no_entry: Denied by {} at {when}{reason}", self.name(approver))
            };
            data.decisions.push(line);
            let needed = request.approval.as_ref().map_or(1, |p| u64::from(p.count));
            let approvals = d["approvals"].as_u64().unwrap_or(0);
            // More approvals to come: keep the buttons, show who approved so far.
            if approve && approvals < needed && data.prompt_open {
                let summary = data.prompt_summary.clone().unwrap_or_default();
                let progress = format!("{} ({approvals} of {needed})", data.decisions.join("\n"));
                let blocks = messages::approval_blocks(&self.signer, &request.id, &summary, Some(&progress));
                for p in data.prompts.clone() {
                    let content = SlackMessageContent::new()
                        .with_text(summary.clone())
                        .with_blocks(blocks.clone());
                    self.update(&p.channel, &p.ts, content).await?;
                }
            }
        }
        Ok(())
    }

    async fn update_root(&self, request: &RequestRecord, data: &SlackData, root: &str) -> Result<(), WebError> {
        let text = messages::root_text(request, &self.requester(request, data), data.progress.as_deref());
        self.update(&data.channel, root, SlackMessageContent::new().with_text(text))
            .await
    }

    /// Posts `text` in the thread; the reply's ts.
    async fn reply(&self, channel: &str, root: &str, text: &str) -> Result<String, WebError> {
        self.post(
            channel,
            Some(root),
            SlackMessageContent::new().with_text(text.to_owned()),
        )
        .await
    }

    async fn post(
        &self,
        channel: &str,
        thread: Option<&str>,
        content: SlackMessageContent,
    ) -> Result<String, WebError> {
        let mut req = SlackApiChatPostMessageRequest::new(SlackChannelId::new(channel.to_owned()), content);
        if let Some(t) = thread {
            req = req.with_thread_ts(SlackTs::new(t.to_owned()));
        }
        let answer = self.web.call("chat.postMessage", &req).await?;
        answer["ts"].as_str().map(str::to_owned).ok_or_else(|| WebError::Api {
            method: "chat.postMessage".into(),
            error: "answer without ts".into(),
        })
    }

    async fn update(&self, channel: &str, ts: &str, content: SlackMessageContent) -> Result<(), WebError> {
        let req = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(channel.to_owned()),
            content,
            SlackTs::new(ts.to_owned()),
        );
        self.web.call("chat.update", &req).await.map(|_| ())
    }
}

/// The surface data a Slack submission starts with.
pub fn initial_data(channel: &str, user: &str, response_url: &str) -> Value {
    json!({ "channel": channel, "user": user, "response_url": response_url })
}
