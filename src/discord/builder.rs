//! The command builder on Discord: `/deckhand build` (Discord cannot invoke `/deckhand`
//! bare) answers privately with selects of the commands the person may run; picking one
//! opens a modal with an input per argument, and its submission becomes the command text
//! (`crate::command_builder`) that goes through `Endpoint::submit` exactly like a typed
//! command: same authorization, approval path and answer. A command without arguments runs
//! when picked.
//!
//! Every step is checked against the signed custom_id (builder_form.rs) for the user who
//! sends it: anything deckhand did not sign for them is refused and changes nothing.

use std::{collections::BTreeMap, sync::Arc};

use axum::response::Response;
use serde_json::json;
use serenity::model::{
    application::{
        ActionRowComponent, CommandDataOption, CommandDataOptionValue, ComponentInteraction,
        ComponentInteractionDataKind, ModalInteraction,
    },
    id::UserId,
};

use super::{
    builder_form::{self as form, MORE_INPUT, Token},
    command_tree::BUILDER,
    interactions::{
        CHANNEL_MESSAGE, EPHEMERAL, Endpoint, Origin, UPDATE_MESSAGE, ephemeral, principal, reply, stranger,
    },
    markup,
    publish::{message_body, truncate},
};
use crate::{
    app::App,
    command_builder::{self, BuildError},
    commands::{CommandSpec, Router},
    identity::Principal,
};

/// The interaction response type that opens a modal.
const MODAL: u8 = 9;
const NOT_OURS: &str = "This form was not made for you by this deckhand (or has been changed), so nothing was done.";

/// Whether a custom_id belongs to the builder (signed or not).
pub fn is_builder(custom_id: &str) -> bool {
    custom_id.starts_with(form::PREFIX)
}

/// Whether a slash command is `/deckhand build`, the builder (unless a spec took the name).
pub fn is_opened_by(router: &Router, options: &[CommandDataOption]) -> bool {
    matches!(options, [o] if o.name == BUILDER && matches!(o.value, CommandDataOptionValue::SubCommand(_)))
        && router.get(BUILDER).is_none()
}

/// A private message holding `content` and `components`.
fn private_message(kind: u8, content: &str, components: Vec<serde_json::Value>) -> Response {
    let mut data = message_body(content, None);
    data["components"] = json!(components);
    data["flags"] = json!(EPHEMERAL);
    reply(kind, Some(data))
}

fn page(app: &App, who: &Principal, user: UserId, page: usize, kind: u8) -> Response {
    let commands = command_builder::commands(&app.router, who);
    if commands.is_empty() {
        return ephemeral("There is no command you may run here; ask an admin to add you to a group.");
    }
    let (content, rows) = form::picker(&app.signer, &user.to_string(), &commands, page);
    private_message(kind, &content, rows)
}

/// `/deckhand build` by `who`: the first page of the command list, shown to them alone.
pub fn open(app: &Arc<App>, who: &Principal, user: UserId) -> Response {
    page(app, who, user, 0, CHANNEL_MESSAGE)
}

/// A pick in a command select, or a Previous / Next click.
pub async fn component(endpoint: &Endpoint, app: &Arc<App>, ci: ComponentInteraction) -> Response {
    let Some(token) = form::parse(&app.signer, &ci.user.id.to_string(), &ci.data.custom_id) else {
        tracing::warn!(custom_id = %truncate(&ci.data.custom_id, 100), "a builder component deckhand did not sign for this user");
        return ephemeral(NOT_OURS);
    };
    let roles = ci.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
    let Some(who) = principal(app, ci.user.id, &roles) else {
        return stranger(ci.user.id);
    };
    let picked = match (&token, &ci.data.kind) {
        (Token::Page(n), _) => return page(app, &who, ci.user.id, *n, UPDATE_MESSAGE),
        (Token::Select(_), ComponentInteractionDataKind::StringSelect { values }) => values.first().cloned(),
        _ => None,
    };
    let Some(spec) = picked.and_then(|p| app.router.visible(&who).find(|s| s.name == p).cloned()) else {
        return ephemeral("That is not a command you may run; pick another one.");
    };
    let fields = command_builder::fields(&spec);
    if fields.is_empty() {
        let origin = Origin::new(
            ci.id,
            ci.application_id,
            &ci.token,
            ci.channel_id,
            ci.guild_id,
            ci.user.id,
        );
        return endpoint.submit(app, who, spec.name.clone(), origin).await;
    }
    match form::custom_id(&app.signer, &ci.user.id.to_string(), &Token::Form(spec.name.clone())) {
        Some(id) => reply(MODAL, Some(form::form(&spec, &fields, &id))),
        None => ephemeral(&markup::inert(&format!(
            "`{}` has too long a name for a Discord form; type it with `/{}`.",
            spec.name, endpoint.command
        ))),
    }
}

/// Every text input of a submitted modal, by custom_id.
fn inputs(mi: &ModalInteraction) -> BTreeMap<String, String> {
    mi.data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .filter_map(|c| match c {
            ActionRowComponent::InputText(t) => Some((t.custom_id.clone(), t.value.clone().unwrap_or_default())),
            _ => None,
        })
        .collect()
}

/// The argument values of a submission, the `MORE_INPUT` lines spread out, or what is wrong.
fn values(spec: &CommandSpec, mut entered: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, BuildError> {
    let Some(more) = entered.remove(MORE_INPUT) else {
        return Ok(entered);
    };
    let pairs = form::more_values(&more).map_err(|e| BuildError::Fields(vec![("Other arguments".into(), e)]))?;
    let mut errors = Vec::new();
    for (name, value) in pairs {
        if spec.args.iter().any(|a| a.name == name) {
            entered.insert(name, value);
        } else {
            errors.push((name.clone(), format!("`{}` has no argument `{name}`", spec.name)));
        }
    }
    if errors.is_empty() {
        Ok(entered)
    } else {
        Err(BuildError::Fields(errors))
    }
}

/// Why a filled form was not submitted, naming each field and what is wrong with it.
fn explain(e: &BuildError, command: &str) -> String {
    let what = match e {
        BuildError::Fields(errors) => errors
            .iter()
            .map(|(f, why)| format!("- **{}**: {}", markup::escape(f), markup::inert(why)))
            .collect::<Vec<_>>()
            .join("\n"),
        BuildError::Command(why) => format!("- {}", markup::inert(why)),
    };
    format!("Nothing was submitted. Fix this and try `/{command} build` again:\n{what}")
}

/// A submitted builder form: its command text, submitted as if typed.
pub async fn submitted(endpoint: &Endpoint, app: &Arc<App>, mi: ModalInteraction) -> Response {
    let token = form::parse(&app.signer, &mi.user.id.to_string(), &mi.data.custom_id);
    let Some(spec) = (match token {
        Some(Token::Form(name)) => app.router.get(&name).cloned(),
        _ => None,
    }) else {
        tracing::warn!(custom_id = %truncate(&mi.data.custom_id, 100), "refused a builder form deckhand did not sign for this user");
        return ephemeral(NOT_OURS);
    };
    let roles = mi.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
    let Some(who) = principal(app, mi.user.id, &roles) else {
        return stranger(mi.user.id);
    };
    let text = match values(&spec, inputs(&mi)).and_then(|v| command_builder::text(&spec, &v)) {
        Ok(t) => t,
        Err(e) => return ephemeral(&explain(&e, &endpoint.command)),
    };
    tracing::info!(command = %spec.name, user = %who.user, "Discord builder form submitted");
    let origin = Origin::new(
        mi.id,
        mi.application_id,
        &mi.token,
        mi.channel_id,
        mi.guild_id,
        mi.user.id,
    );
    endpoint.submit(app, who, text, origin).await
}
