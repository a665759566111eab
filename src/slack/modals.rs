//! Slack modals: the command builder (`/deckhand` with no text) and the reason asked for by
//! Deny. Both transports hand every interactivity payload here first; what is not about a
//! deckhand modal goes on to the button handlers.
//!
//! A modal's private_metadata comes back with its submission, so it is signed: the builder's
//! (channel, response_url, chosen command) with the person it was opened for, the Deny form's
//! with the Deny button's own signed value. A submission whose metadata deckhand did not sign
//! is refused on the form and changes nothing. A filled builder becomes command text and goes
//! through `App::submit` exactly like typed text.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    buttons,
    data::initial_data,
    inbound::{Inbound, InboundError, unknown_user},
    views::{self, ARG_BLOCK, BUILDER_CALLBACK, DENY_CALLBACK, REASON_BLOCK},
    web::WebError,
};
use crate::{
    app::{App, AppError, Invocation},
    command_builder::{self, BuildError},
    domain::{RequestId, Surface},
    identity::Principal,
};

const SIG_LEN: usize = 22;
const NOT_OURS: &str = "deckhand did not make this form (or it was altered), so nothing was done.";

/// What the builder needs back from Slack: where the command was typed and, once picked,
/// which command it builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BuilderState {
    channel: String,
    response_url: String,
    #[serde(default)]
    command: Option<String>,
}

fn builder_message(user: &str, json: &str) -> String {
    format!("slack-builder:{user}:{json}")
}

/// `SIGNATURE.JSON`, bound to the Slack user the builder was opened for.
fn seal(app: &App, user: &str, state: &BuilderState) -> String {
    let json = serde_json::to_string(state).unwrap_or_default();
    format!("{}.{json}", app.signer.sign(&builder_message(user, &json), SIG_LEN))
}

fn unseal(app: &App, user: &str, metadata: &str) -> Option<BuilderState> {
    let (sig, json) = metadata.split_once('.')?;
    if sig.len() != SIG_LEN || !app.signer.verify(&builder_message(user, json), sig) {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Opens the builder on a bare `/deckhand`, with the commands `who` may run.
pub async fn open_builder(
    app: &Arc<App>,
    inbound: &Inbound,
    who: &Principal,
    trigger_id: &str,
    (channel, user, response_url): (&str, &str, &str),
) -> Result<(), WebError> {
    let state = BuilderState {
        channel: channel.to_owned(),
        response_url: response_url.to_owned(),
        command: None,
    };
    let commands = command_builder::commands(&app.router, who);
    let view = views::builder(&commands, None, &seal(app, user, &state));
    inbound
        .web
        .call("views.open", &json!({ "trigger_id": trigger_id, "view": view }))
        .await
        .map(|_| ())
}

/// A Deny click by `who`, already known to be a deckhand button for `id`: opens the form
/// asking why. `Ok(Some(text))` is an explanation for the person (nothing was opened).
pub async fn ask_reason(
    app: &Arc<App>,
    inbound: &Inbound,
    who: &Principal,
    id: &RequestId,
    signed_value: &str,
    trigger_id: &str,
) -> Result<Option<String>, InboundError> {
    let request = match app.get(id).await {
        Ok(r) => r,
        Err(AppError::Store(e)) => return Err(InboundError::Store(e.to_string())),
        Err(e) => return Ok(Some(e.to_string())),
    };
    // Someone who may not deny hears so at once, not after typing a reason.
    if let Err(e) = app.may_approve(who, &request) {
        return Ok(Some(e.to_string()));
    }
    let view = views::deny(&request, signed_value);
    match inbound
        .web
        .call("views.open", &json!({ "trigger_id": trigger_id, "view": view }))
        .await
    {
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, request = %id, "could not open the Deny form");
            Ok(Some(format!(
                "Slack did not open the form asking why ({e}); click Deny again, or type `deny {id} <reason>`."
            )))
        }
    }
}

/// The interactivity payload in a form body (`payload=<json>`), as JSON.
pub fn payload(form: &str) -> Result<Value, InboundError> {
    let raw = super::inbound::payload_field(form)?;
    serde_json::from_str(&raw).map_err(|e| InboundError::Malformed(e.to_string()))
}

/// Handles `payload` when it is about a deckhand modal: `None` when it is not, else the
/// body to answer Slack with (`None` closes the modal).
pub async fn interaction(
    app: &Arc<App>,
    inbound: &Inbound,
    payload: &Value,
) -> Option<Result<Option<Value>, InboundError>> {
    let callback = payload["view"]["callback_id"].as_str()?;
    let result = match (payload["type"].as_str()?, callback) {
        ("block_actions", BUILDER_CALLBACK) => choose(app, inbound, payload).await.map(|()| None),
        ("view_submission", BUILDER_CALLBACK) => submit_builder(app, inbound, payload).await,
        ("view_submission", DENY_CALLBACK) => submit_deny(app, inbound, payload).await,
        ("view_closed", BUILDER_CALLBACK | DENY_CALLBACK) => Ok(None),
        _ => return None,
    };
    Some(result)
}

fn user_of(payload: &Value) -> Result<&str, InboundError> {
    payload["user"]["id"]
        .as_str()
        .ok_or_else(|| InboundError::Malformed("a view payload without a user".into()))
}

/// A command picked in the builder: the same modal, now with that command's fields.
async fn choose(app: &Arc<App>, inbound: &Inbound, payload: &Value) -> Result<(), InboundError> {
    let user = user_of(payload)?;
    let view = &payload["view"];
    let Some(mut state) = unseal(app, user, view["private_metadata"].as_str().unwrap_or_default()) else {
        tracing::warn!(slack_user = %user, "a builder choice on a modal deckhand did not sign");
        return Ok(());
    };
    let Some(who) = inbound.principal(app, user).await else {
        inbound.tell(Some(&state.response_url), unknown_user(user));
        return Ok(());
    };
    let picked = payload["actions"][0]["selected_option"]["value"].as_str();
    let Some(spec) = picked.and_then(|p| app.router.visible(&who).find(|s| s.name == p)) else {
        return Ok(());
    };
    state.command = Some(spec.name.clone());
    let fields = command_builder::fields(spec);
    let commands = command_builder::commands(&app.router, &who);
    let updated = views::builder(&commands, Some((spec, &fields)), &seal(app, user, &state));
    let body = json!({ "view_id": view["id"], "hash": view["hash"], "view": updated });
    if let Err(e) = inbound.web.call("views.update", &body).await {
        tracing::warn!(error = %e, "could not show the builder's fields");
        inbound.tell(
            Some(&state.response_url),
            format!("Slack did not show the fields of `{}` ({e}); try again.", spec.name),
        );
    }
    Ok(())
}

/// What was entered per `arg:<name>` block, from a select or a text input.
fn entered(view: &Value) -> BTreeMap<String, String> {
    let Some(blocks) = view["state"]["values"].as_object() else {
        return BTreeMap::new();
    };
    blocks
        .iter()
        .filter_map(|(block, actions)| {
            let name = block.strip_prefix(ARG_BLOCK)?;
            let v = &actions["value"];
            let value = v["selected_option"]["value"].as_str().or_else(|| v["value"].as_str())?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Keeps the modal open with `message` on the first argument's field, or, when the form
/// has none, replaces it with `message`.
fn refuse(view: &Value, message: &str) -> Value {
    let first = view["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "input")
        .find_map(|b| b["block_id"].as_str());
    match first {
        Some(block) => json!({ "response_action": "errors", "errors": { block: message } }),
        None => json!({
            "response_action": "update",
            "view": {
                "type": "modal",
                "title": { "type": "plain_text", "text": "deckhand" },
                "close": { "type": "plain_text", "text": "Close" },
                "blocks": [{ "type": "section", "text": { "type": "plain_text", "text": views::clip(message, 3000) } }],
            },
        }),
    }
}

fn field_errors(errors: &[(String, String)]) -> Value {
    let map: serde_json::Map<String, Value> = errors
        .iter()
        .map(|(f, e)| (format!("{ARG_BLOCK}{f}"), json!(e)))
        .collect();
    json!({ "response_action": "errors", "errors": map })
}

/// A filled builder: its command text, submitted as if typed where `/deckhand` was typed.
async fn submit_builder(app: &Arc<App>, inbound: &Inbound, payload: &Value) -> Result<Option<Value>, InboundError> {
    let user = user_of(payload)?;
    let view = &payload["view"];
    let state = unseal(app, user, view["private_metadata"].as_str().unwrap_or_default());
    let Some((state, spec)) = state.and_then(|s| {
        let spec = app.router.get(s.command.as_deref()?)?.clone();
        Some((s, spec))
    }) else {
        tracing::warn!(slack_user = %user, "refused a builder submission deckhand did not sign");
        return Ok(Some(refuse(view, NOT_OURS)));
    };
    let Some(who) = inbound.principal(app, user).await else {
        return Ok(Some(refuse(view, &unknown_user(user))));
    };
    let text = match command_builder::text(&spec, &entered(view)) {
        Ok(t) => t,
        Err(BuildError::Fields(errors)) => return Ok(Some(field_errors(&errors))),
        Err(e @ BuildError::Command(_)) => return Ok(Some(refuse(view, &e.to_string()))),
    };
    let inv = Invocation {
        principal: who,
        surface: Surface::Slack,
        text,
        channel: Some(state.channel.clone()),
        thread: None,
        surface_data: Some(initial_data(&state.channel, user, &state.response_url)),
        idempotency_key: view["id"].as_str().map(|id| format!("slack:view:{id}")),
    };
    match app.submit(inv).await {
        Ok(s) => {
            tracing::info!(request = %s.request.id, duplicate = s.duplicate, "Slack builder command stored");
            Ok(None)
        }
        Err(AppError::Store(e)) => Err(InboundError::Store(e.to_string())),
        Err(e) => Ok(Some(refuse(view, &e.to_string()))),
    }
}

/// The Deny form, submitted: the denial with its reason, or the reason it cannot be.
async fn submit_deny(app: &Arc<App>, inbound: &Inbound, payload: &Value) -> Result<Option<Value>, InboundError> {
    let user = user_of(payload)?;
    let view = &payload["view"];
    let metadata = view["private_metadata"].as_str().unwrap_or_default();
    let on_reason = |message: String| Some(json!({ "response_action": "errors", "errors": { REASON_BLOCK: message } }));
    let Ok((buttons::Decision::Deny, id)) = buttons::parse(&app.signer, "deny", metadata) else {
        tracing::warn!(slack_user = %user, "refused a Deny form deckhand did not sign");
        return Ok(on_reason(NOT_OURS.into()));
    };
    let Some(who) = inbound.principal(app, user).await else {
        return Ok(on_reason(unknown_user(user)));
    };
    let reason = view["state"]["values"][REASON_BLOCK]["value"]["value"]
        .as_str()
        .unwrap_or_default();
    match app.deny(&id, &who, reason, "slack").await {
        Ok(_) => Ok(None),
        Err(AppError::Store(e)) => Err(InboundError::Store(e.to_string())),
        Err(e) => Ok(on_reason(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_lands_on_the_first_field_or_replaces_a_form_without_fields() {
        let with = json!({ "blocks": [{ "type": "actions" }, { "type": "input", "block_id": "arg:name" }] });
        assert_eq!(refuse(&with, "no")["errors"]["arg:name"], "no");
        let without = json!({ "blocks": [{ "type": "actions" }] });
        assert_eq!(refuse(&without, "no")["response_action"], "update");
    }
}
