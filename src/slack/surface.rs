//! `ChatSurface` for Slack: a root status message per request (edited in place), its thread
//! for milestones, progress, output and errors, and the approval prompt.
//!
//! What Slack needs to find the conversation again (channel, root ts, the prompts' ts) is
//! kept with the request (`SlackData`, data.rs), written back by compare-and-set when showing
//! an event changed it (`chat::conversation`).

use std::{sync::Arc, time::Duration};

use super::{
    config::SlackConfig,
    data::SlackData,
    messages, private,
    web::{WebApi, WebError},
};
use crate::{
    chat::{Markup, Mentions, conversation, shown},
    configuration::Config,
    domain::{Surface, now_ms},
    signing::Signer,
    store::{Event, EventKind, RequestRecord, Store},
    surface::{self, ChatSurface, Delivery, Shown, SurfaceError},
    visibility::Audience,
};
use async_trait::async_trait;
use slack_morphism::{
    SlackChannelId, SlackMessageContent, SlackTs,
    api::{SlackApiChatPostMessageRequest, SlackApiChatUpdateRequest},
};

pub struct SlackSurface {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    web: WebApi,
    pub(super) signer: Signer,
    pub(super) approvals_channel: Option<String>,
    progress_interval: Duration,
    /// deckhand users and groups as Slack users and user groups, for mentions.
    mentions: Mentions,
}

impl SlackSurface {
    pub fn new(config: &Config, signer: &Signer) -> Self {
        let slack: &SlackConfig = &config.slack;
        let mentions = Mentions::from_config(config, "slack", "slack-group");
        Self {
            inner: Arc::new(Inner {
                web: WebApi::new(slack),
                signer: signer.clone(),
                approvals_channel: Some(slack.approvals_channel.clone()).filter(|c| !c.is_empty()),
                progress_interval: Duration::from_millis(slack.progress_interval_ms),
                mentions,
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
    /// Runs `show` with the conversation's data as the outbox read it, and keeps what it
    /// learnt (the root ts, prompts) even when a later call failed.
    async fn with_data<F, Fut>(&self, store: &Store, request: &RequestRecord, show: F) -> Result<Shown, SurfaceError>
    where
        F: FnOnce(SlackData) -> Fut,
        Fut: std::future::Future<Output = (SlackData, Result<Option<String>, WebError>)>,
    {
        let Some(data) = conversation::of::<SlackData>(request) else {
            // Not a Slack conversation (or from an older build); nothing to show.
            return Ok(Shown::default());
        };
        let before = data.clone();
        let (data, result) = show(data).await;
        let conversation = conversation::save_if_changed(store, request, &before, &data)
            .await
            .map_err(unstored)?;
        let message = result.map_err(refused)?;
        Ok(Shown { message, conversation })
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
        self.markup().user(user)
    }

    pub(super) fn markup(&self) -> messages::SlackMarkup<'_> {
        messages::SlackMarkup(&self.mentions)
    }

    /// The requester's Slack user id: the one who typed the command, else their identity.
    fn requester_id<'a>(&'a self, request: &RequestRecord, data: &'a SlackData) -> Option<&'a str> {
        data.user
            .as_deref()
            .or_else(|| self.mentions.user_id(&request.requester))
    }

    pub(super) fn requester(&self, request: &RequestRecord, data: &SlackData) -> String {
        match &data.user {
            Some(u) => format!("<@{u}>"),
            None => self.name(&request.requester),
        }
    }

    /// The latest progress line goes into the root message (edited in place), not the thread.
    async fn progress(
        &self,
        request: &RequestRecord,
        line: &str,
        data: &mut SlackData,
    ) -> Result<Option<String>, WebError> {
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
    ) -> Result<Option<String>, WebError> {
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
                data.output_shown = true;
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
        messages::output_content(&self.signer, &event.message, event.data.buttons(), event.data.links())
    }

    /// A read-only command's answer, to the person alone: on the command's response_url
    /// (Slack's own answer to a slash command), else an ephemeral message in the channel.
    /// No root message, no thread.
    async fn answer_privately(
        &self,
        request: &RequestRecord,
        event: &Event,
        data: &mut SlackData,
    ) -> Result<Option<String>, WebError> {
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
        let Some(file) = event.data.attachment() else {
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
        let text = messages::root_text(request, &self.requester(request, data), None, now_ms());
        let shown = shown::digest(&text);
        match self
            .post(&data.channel, None, SlackMessageContent::new().with_text(text))
            .await
        {
            Ok(ts) => {
                data.root_ts = Some(ts.clone());
                data.root_shown = Some(shown);
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

    pub(super) async fn update_root(
        &self,
        request: &RequestRecord,
        data: &mut SlackData,
        root: &str,
    ) -> Result<(), WebError> {
        let requester = self.requester(request, data);
        let text = if crate::chat::text::shows_finished(request.state, data.output_shown) {
            messages::root_finished(request, &requester, now_ms())
        } else {
            messages::root_text(request, &requester, data.progress.as_deref(), now_ms())
        };
        if shown::unchanged(data.root_shown.as_deref(), &text) {
            return Ok(());
        }
        let shown = shown::digest(&text);
        self.update(&data.channel, root, SlackMessageContent::new().with_text(text))
            .await?;
        data.root_shown = Some(shown);
        Ok(())
    }

    /// Posts `text` in the thread; the reply's ts.
    pub(super) async fn reply(&self, channel: &str, root: &str, text: &str) -> Result<String, WebError> {
        self.post(
            channel,
            Some(root),
            SlackMessageContent::new().with_text(text.to_owned()),
        )
        .await
    }

    pub(super) async fn post(
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

    pub(super) async fn update(&self, channel: &str, ts: &str, content: SlackMessageContent) -> Result<(), WebError> {
        let req = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(channel.to_owned()),
            content,
            SlackTs::new(ts.to_owned()),
        );
        self.web.call("chat.update", &req).await.map(|_| ())
    }
}
