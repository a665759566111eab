//! Private output in Slack: sent to the requester alone with `chat.postEphemeral` in the
//! request's thread (only they see it, and only in that client session), else on the
//! command's response_url (also ephemeral, valid 30 minutes). Never `chat.postMessage`: a
//! thread is read by the whole channel, and a proxy or shell link is a credential.

use slack_morphism::{
    SlackChannelId, SlackMessageContent, SlackTs, SlackUserId, api::SlackApiChatPostEphemeralRequest,
};

use super::{messages, web::WebApi};

/// Where the requester can be reached privately, and what to show them.
pub struct PrivateMessage<'a> {
    pub channel: &'a str,
    /// The request's thread, if it has one.
    pub thread_ts: Option<&'a str>,
    /// The requester's Slack user id, if known.
    pub user: Option<&'a str>,
    pub response_url: Option<&'a str>,
    pub content: SlackMessageContent,
}

/// Sends `m` to the requester; true if one of the private routes took it.
pub async fn send(web: &WebApi, m: PrivateMessage<'_>) -> bool {
    if let Some(user) = m.user {
        let mut req = SlackApiChatPostEphemeralRequest::new(
            SlackChannelId::new(m.channel.to_owned()),
            SlackUserId::new(user.to_owned()),
            m.content.clone(),
        );
        if let Some(ts) = m.thread_ts {
            req = req.with_thread_ts(SlackTs::new(ts.to_owned()));
        }
        match web.call("chat.postEphemeral", &req).await {
            Ok(_) => return true,
            Err(e) => tracing::warn!(error = %e, "chat.postEphemeral refused; trying the response_url"),
        }
    }
    let Some(url) = m.response_url else {
        return false;
    };
    let text = m.content.text.clone().unwrap_or_default();
    // Already escaped for mrkdwn by the caller: send it as is.
    let mut body = messages::ephemeral_raw(&text);
    if let Some(blocks) = &m.content.blocks {
        body["blocks"] = serde_json::to_value(blocks).unwrap_or_default();
    }
    match web.respond(url, &body).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not send private output on the response_url");
            false
        }
    }
}
