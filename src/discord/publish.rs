//! The Discord surface: a request's events shown where it was asked.
//!
//! Layout: the interaction's original response is the status message, edited in place
//! (state, the latest progress line, then the outcome); approval buttons go in a follow-up
//! of their own, replaced by who decided; output is a follow-up. Until the interaction token expires
//! everything goes through the interaction webhook; after that (or if Discord refuses the
//! token) through the channel with the bot token, so long actions lose no message.
//!
//! Private output (a link, exec output) is not shown here but sent to the requester alone
//! (`private.rs`). Text deckhand did not write is escaped (`markup.rs`) and no message
//! may ping anyone (`allowed_mentions` is empty).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;
// Re-exported for the interaction handlers, which build their answers with them.
pub(super) use super::render::{message_body, truncate};
use super::{
    markup::escape,
    render,
    rest::{Auth, Rest, RestError},
    state::DiscordState,
};
use crate::{
    chat::Mentions,
    domain::{Surface, now_ms},
    events::EventData,
    signing::Signer,
    store::{Event, RequestRecord, Store},
    surface::{self, ChatSurface, Delivery, Shown, SurfaceError},
};

/// Right after the deferred response, Discord may not know the interaction yet; an edit of
/// @original that comes back 404 this early is retried rather than taken as expiry.
const ACK_GRACE_MS: i64 = 5_000;
/// The status message is edited for progress at most this often (Discord allows about five
/// edits in five seconds per message; the rest of the lines wait in the outbox).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

pub struct DiscordSurface {
    pub(super) rest: Rest,
    pub(super) signer: Signer,
    /// deckhand users and groups as Discord users and roles, for mentions.
    pub(super) mentions: Mentions,
}

impl DiscordSurface {
    pub fn new(rest: Rest, signer: Signer, mentions: Mentions) -> Self {
        Self { rest, signer, mentions }
    }
}

/// A failure worth retrying later (the store, an outage).
pub(super) fn err(message: impl ToString) -> SurfaceError {
    SurfaceError::transient(Surface::Discord, message)
}

/// What Discord answered: its refusals (4xx other than 429) are permanent.
fn refused(e: RestError) -> SurfaceError {
    if e.permanent() {
        SurfaceError::permanent(Surface::Discord, e)
    } else {
        SurfaceError::transient(Surface::Discord, e)
    }
}

#[async_trait]
impl ChatSurface for DiscordSurface {
    fn surface(&self) -> Surface {
        Surface::Discord
    }

    async fn publish(&self, store: &Store, request: &RequestRecord, event: &Event) -> Result<Shown, SurfaceError> {
        let Some(mut st) = self.conversation(request) else {
            return Ok(Shown::default());
        };
        let before = st.clone();
        let result = self.show(store, request, event, &mut st).await;
        let conversation = self.keep(store, request, &before, &st).await?;
        result.map(|()| Shown {
            message: st.original_message_id.clone(),
            conversation,
        })
    }

    async fn show_progress(&self, store: &Store, request: &RequestRecord, line: &str) -> Result<Shown, SurfaceError> {
        let Some(mut st) = self.conversation(request) else {
            return Ok(Shown::default());
        };
        let before = st.clone();
        let result = self.progress(request, line, &mut st).await;
        let conversation = self.keep(store, request, &before, &st).await?;
        result.map(|()| Shown {
            message: st.original_message_id.clone(),
            conversation,
        })
    }

    fn progress_interval(&self) -> Duration {
        PROGRESS_INTERVAL
    }
}

impl DiscordSurface {
    /// The conversation kept with the request as the outbox read it for this delivery.
    /// `None` when it is not a Discord conversation.
    fn conversation(&self, request: &RequestRecord) -> Option<DiscordState> {
        let st = crate::chat::conversation::of::<DiscordState>(request);
        if st.is_none() {
            tracing::debug!(request = %request.id, "no Discord conversation stored; nothing to show");
        }
        st
    }

    /// Keeps message ids learnt on the way, even when a later call failed; the state as
    /// stored when it changed.
    async fn keep(
        &self,
        store: &Store,
        record: &RequestRecord,
        before: &DiscordState,
        st: &DiscordState,
    ) -> Result<Option<serde_json::Value>, SurfaceError> {
        crate::chat::conversation::save_if_changed(store, record, before, st)
            .await
            .map_err(err)
    }

    async fn show(
        &self,
        store: &Store,
        record: &RequestRecord,
        event: &Event,
        st: &mut DiscordState,
    ) -> Result<(), SurfaceError> {
        if surface::is_private_answer(record) {
            return self.answer_privately(event, st).await;
        }
        match &event.data {
            EventData::State(change) => self.on_state(store, record, change, st).await?,
            EventData::ApprovalRequested(ask) => self.on_prompt(record, ask, st).await?,
            EventData::Decision(d) => self.on_decision(record, d, st).await?,
            _ if let Delivery::Private(audience) = surface::delivery(event) => {
                self.private(record, event, audience, st).await?;
            }
            EventData::Progress(_) => self.progress(record, &event.message, st).await?,
            EventData::Output(_) => {
                for body in render::output_bodies(&self.signer, &event.message, &event.data) {
                    self.post(st, &body).await?;
                }
                st.output_shown = true;
                self.post_attachment(store, st, event).await?;
            }
        }
        Ok(())
    }

    /// The latest progress line, in the status message: progress is not worth a follow-up.
    async fn progress(&self, record: &RequestRecord, line: &str, st: &mut DiscordState) -> Result<(), SurfaceError> {
        self.edit_status(st, &render::progress_status(record, line, now_ms()))
            .await
    }

    /// Edits the status message (the interaction's original response).
    pub(super) async fn edit_status(&self, st: &mut DiscordState, content: &str) -> Result<(), SurfaceError> {
        if st.original_message_id.is_some() && crate::chat::shown::unchanged(st.status_shown.as_deref(), content) {
            return Ok(());
        }
        self.write_status(st, content).await?;
        st.status_shown = Some(crate::chat::shown::digest(content));
        Ok(())
    }

    async fn write_status(&self, st: &mut DiscordState, content: &str) -> Result<(), SurfaceError> {
        let body = message_body(content, None);
        if st.token_valid() {
            let path = format!("/webhooks/{}/{}/messages/@original", st.application_id, st.token);
            let mut attempt = 0;
            loop {
                match self.rest.call(Method::PATCH, &path, Auth::None, Some(&body)).await {
                    Ok(msg) => {
                        if st.original_message_id.is_none() {
                            st.original_message_id = message_id(&msg);
                        }
                        return Ok(());
                    }
                    Err(e) if e.token_refused() && attempt < 4 && now_ms() - st.received_at < ACK_GRACE_MS => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(400)).await;
                    }
                    Err(e) if e.token_refused() => {
                        tracing::info!(error = %e, "interaction token refused; continuing in the channel");
                        st.token_expires_at = 0;
                        break;
                    }
                    Err(e) => return Err(refused(e)),
                }
            }
        }
        match st.original_message_id.clone() {
            Some(id) => self.bot_edit(st, &id, &body).await,
            None => {
                let id = self.bot_post(st, &body).await?;
                st.original_message_id = Some(id);
                Ok(())
            }
        }
    }

    /// Posts a message (a follow-up while the token lasts); returns its id.
    pub(super) async fn post(&self, st: &mut DiscordState, body: &Value) -> Result<String, SurfaceError> {
        if st.token_valid() {
            let path = format!("/webhooks/{}/{}?wait=true", st.application_id, st.token);
            match self.rest.call(Method::POST, &path, Auth::None, Some(body)).await {
                Ok(msg) => return message_id(&msg).ok_or_else(|| err("Discord returned no message id")),
                Err(e) => self.token_failed(st, e)?,
            }
        }
        self.bot_post(st, body).await
    }

    /// Posts the file an output event announces (a load test's chart), like `post`: as a
    /// follow-up while the interaction token lasts, in the channel after.
    async fn post_attachment(&self, store: &Store, st: &mut DiscordState, event: &Event) -> Result<(), SurfaceError> {
        let Some(file) = event.data.attachment() else {
            return Ok(());
        };
        let Some(bytes) = crate::attachments::Attachments::new(store.pool().clone())
            .get(&file.id)
            .await
            .map_err(err)?
        else {
            tracing::warn!(attachment = %file.id, "announced attachment is not stored");
            return Ok(());
        };
        let part = super::upload::FilePart {
            filename: &file.filename,
            content_type: &file.content_type,
            bytes: &bytes,
        };
        let payload = message_body(&escape(&file.title), None);
        if st.token_valid() {
            let path = format!("/webhooks/{}/{}?wait=true", st.application_id, st.token);
            match self
                .rest
                .call_with_file(Method::POST, &path, Auth::None, &payload, &part)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => self.token_failed(st, e)?,
            }
        }
        self.need_bot()?;
        let path = format!("/channels/{}/messages", st.channel_id);
        self.rest
            .call_with_file(Method::POST, &path, Auth::Bot, &payload, &part)
            .await
            .map(|_| ())
            .map_err(refused)
    }

    /// Edits a message deckhand posted for this request.
    pub(super) async fn edit(&self, st: &mut DiscordState, message: &str, body: &Value) -> Result<(), SurfaceError> {
        if st.token_valid() {
            let path = format!("/webhooks/{}/{}/messages/{message}", st.application_id, st.token);
            match self.rest.call(Method::PATCH, &path, Auth::None, Some(body)).await {
                Ok(_) => return Ok(()),
                Err(e) => self.token_failed(st, e)?,
            }
        }
        self.bot_edit(st, message, body).await
    }

    /// A refused token means "use the channel from now on"; anything else is an error.
    pub(super) fn token_failed(&self, st: &mut DiscordState, e: RestError) -> Result<(), SurfaceError> {
        if e.token_refused() {
            tracing::info!(error = %e, "interaction token refused; continuing in the channel");
            st.token_expires_at = 0;
            Ok(())
        } else {
            Err(refused(e))
        }
    }

    fn need_bot(&self) -> Result<(), SurfaceError> {
        if self.rest.has_bot_token() {
            Ok(())
        } else {
            Err(SurfaceError::permanent(
                Surface::Discord,
                "the interaction token expired and discord.bot_token is not set, so this message cannot be shown",
            ))
        }
    }

    async fn bot_post(&self, st: &DiscordState, body: &Value) -> Result<String, SurfaceError> {
        self.need_bot()?;
        let path = format!("/channels/{}/messages", st.channel_id);
        let msg = self
            .rest
            .call(Method::POST, &path, Auth::Bot, Some(body))
            .await
            .map_err(refused)?;
        message_id(&msg).ok_or_else(|| err("Discord returned no message id"))
    }

    async fn bot_edit(&self, st: &DiscordState, message: &str, body: &Value) -> Result<(), SurfaceError> {
        self.need_bot()?;
        let path = format!("/channels/{}/messages/{message}", st.channel_id);
        self.rest
            .call(Method::PATCH, &path, Auth::Bot, Some(body))
            .await
            .map(|_| ())
            .map_err(refused)
    }
}

pub(super) fn message_id(msg: &Value) -> Option<String> {
    msg.get("id").and_then(Value::as_str).map(str::to_owned)
}
