//! Private output in Discord: an ephemeral follow-up (flags 64) on the requester's
//! interaction while its token lasts (Discord shows it to the person who ran the command
//! and no one else), else a direct message to the requester through the bot. Never a
//! channel message: the channel is read by everyone in it, and a proxy or shell link is a
//! credential. The channel gets only the neutral line from `surface::private_notice`.

use reqwest::Method;
use serde_json::{Value, json};

use super::{
    markup,
    publish::{DiscordSurface, message_id},
    render::{self, message_body},
    rest::Auth,
    state::DiscordState,
};
use crate::{
    store::{Event, RequestRecord},
    surface::{self, SurfaceError},
    visibility::Audience,
};

/// Discord's EPHEMERAL message flag.
const EPHEMERAL: u64 = 1 << 6;

impl DiscordSurface {
    /// A read-only command's answer, to the person alone: the deferred response was
    /// ephemeral, so its original message is theirs; a DM once the token is gone. Never the
    /// channel.
    pub(super) async fn answer_privately(&self, event: &Event, st: &mut DiscordState) -> Result<(), SurfaceError> {
        let (bodies, output) = match surface::private_answer(event, st.answered) {
            surface::PrivateAnswer::Nothing => return Ok(()),
            surface::PrivateAnswer::Output(e) => (self.output_bodies(e), true),
            surface::PrivateAnswer::Line(line) => (vec![message_body(&markup::escape(&line), None)], false),
        };
        let sent = self.edit_original(st, &bodies).await? || self.direct(st, &bodies).await;
        if !sent {
            return Err(SurfaceError::transient(
                crate::domain::Surface::Discord,
                "could not answer the person privately (interaction token gone, no DM possible)",
            ));
        }
        st.answered |= output;
        Ok(())
    }

    /// The first body into the (ephemeral) original response, the rest as ephemeral
    /// follow-ups; false if the token is gone.
    async fn edit_original(&self, st: &mut DiscordState, bodies: &[Value]) -> Result<bool, SurfaceError> {
        let Some((first, rest)) = bodies.split_first().filter(|_| st.token_valid()) else {
            return Ok(false);
        };
        let path = format!("/webhooks/{}/{}/messages/@original", st.application_id, st.token);
        if let Err(e) = self.rest.call(Method::PATCH, &path, Auth::None, Some(first)).await {
            self.token_failed(st, e)?;
            return Ok(false);
        }
        self.ephemeral(st, rest).await
    }

    /// Sends `event` to the requester alone and says so in the channel.
    pub(super) async fn private(
        &self,
        record: &RequestRecord,
        event: &Event,
        audience: Audience,
        st: &mut DiscordState,
    ) -> Result<(), SurfaceError> {
        let bodies = self.output_bodies(event);
        let delivered = self.ephemeral(st, &bodies).await? || self.direct(st, &bodies).await;
        let requester = match &st.user_id {
            // Shown as a mention; allowed_mentions stays empty, so it pings no one.
            Some(id) if id.chars().all(|c| c.is_ascii_digit()) => format!("<@{id}>"),
            _ => markup::escape(&record.requester),
        };
        let notice = surface::private_notice(record, audience, &requester, delivered);
        self.post(st, &message_body(&notice, None)).await.map(|_| ())
    }

    /// The output as message bodies, its buttons under the last one.
    fn output_bodies(&self, event: &Event) -> Vec<Value> {
        render::output_bodies(&self.signer, &event.message, &event.data)
    }

    /// Ephemeral follow-ups on the interaction; false if the token is gone.
    async fn ephemeral(&self, st: &mut DiscordState, bodies: &[Value]) -> Result<bool, SurfaceError> {
        if !st.token_valid() {
            return Ok(false);
        }
        let path = format!("/webhooks/{}/{}?wait=true", st.application_id, st.token);
        for body in bodies {
            let mut body = body.clone();
            body["flags"] = json!(EPHEMERAL);
            if let Err(e) = self.rest.call(Method::POST, &path, Auth::None, Some(&body)).await {
                self.token_failed(st, e)?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A DM to the requester through the bot; false if it cannot be sent.
    async fn direct(&self, st: &DiscordState, bodies: &[Value]) -> bool {
        let Some(user) = st.user_id.as_deref().filter(|_| self.rest.has_bot_token()) else {
            return false;
        };
        let open = json!({ "recipient_id": user });
        let channel = match self
            .rest
            .call(Method::POST, "/users/@me/channels", Auth::Bot, Some(&open))
            .await
        {
            Ok(dm) => match message_id(&dm) {
                Some(id) => id,
                None => {
                    tracing::warn!("Discord answered the DM channel request without an id");
                    return false;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a DM with the requester");
                return false;
            }
        };
        let path = format!("/channels/{channel}/messages");
        for body in bodies {
            if let Err(e) = self.rest.call(Method::POST, &path, Auth::Bot, Some(body)).await {
                tracing::warn!(error = %e, "cannot send private output as a DM");
                return false;
            }
        }
        true
    }
}
