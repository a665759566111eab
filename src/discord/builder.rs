//! The command builder on Discord: `/deckhand build` (Discord cannot invoke `/deckhand`
//! bare) answers privately with selects of the commands the person may run; picking one
//! opens a modal with an input per argument, and its submission becomes the command text
//! (`crate::command_builder`) that goes through `Endpoint::submit` exactly like a typed
//! command: same authorization, approval path and answer.
//!
//! A command without arguments has no form to stop a slip of the mouse, so picking one that
//! changes something asks first ("Run `/deckhand x`?" with Run and Cancel). A read-only one
//! (`answer: private` in its spec: help, whoami, status...) runs when picked: its answer is
//! private and changes nothing, so a wrong pick costs one glance, and a question before it
//! would only be a second click every time.
//!
//! A form with a mistake comes back as a private message naming each one, with a "Fix it"
//! button that reopens the form holding what was typed (builder_fix.rs).
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
    builder_fix,
    builder_form::{self as form, MORE_INPUT, Token},
    command_tree::BUILDER,
    interactions::{
        CHANNEL_MESSAGE, EPHEMERAL, Endpoint, UPDATE_MESSAGE, ephemeral, origin_of, principal, reply, stranger,
    },
    markup,
    publish::{message_body, truncate},
};
use crate::{
    app::App,
    command_builder::{self, BuildError},
    commands::{CommandSpec, Router, spec::Answer},
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
        (Token::Cancel, _) => return cancelled(),
        (Token::Select(_), ComponentInteractionDataKind::StringSelect { values }) => values.first().cloned(),
        (Token::Fix(name) | Token::Run(name), _) => Some(name.clone()),
        _ => None,
    };
    let Some(spec) = picked.and_then(|p| app.router.visible(&who).find(|s| s.name == p).cloned()) else {
        return ephemeral("That is not a command you may run; pick another one.");
    };
    let fields = command_builder::fields(&spec);
    let user = ci.user.id.to_string();
    if fields.is_empty() {
        if spec.answer != Answer::Private && !matches!(token, Token::Run(_)) {
            return confirm(app, endpoint, &user, &spec.name);
        }
        let origin = origin_of!(ci);
        return endpoint.submit(app, who, spec.name.clone(), origin).await;
    }
    let entered = match token {
        Token::Fix(_) => builder_fix::entered(&ci.message),
        _ => BTreeMap::new(),
    };
    match form::custom_id(&app.signer, &user, &Token::Form(spec.name.clone())) {
        Some(id) => reply(
            MODAL,
            Some(builder_fix::prefill(form::form(&spec, &fields, &id), &entered)),
        ),
        None => ephemeral(&markup::inert(&format!(
            "`{}` has too long a name for a Discord form; type it with `/{}`.",
            spec.name, endpoint.command
        ))),
    }
}

/// The pick of a command without arguments that changes something: the list becomes a
/// question with Run and Cancel, signed for `user`.
fn confirm(app: &App, endpoint: &Endpoint, user: &str, command: &str) -> Response {
    let button = |label: &str, style: u8, t: Token| {
        form::custom_id(&app.signer, user, &t)
            .map(|id| json!({ "type": 2, "style": style, "label": label, "custom_id": id }))
    };
    let (Some(run), Some(cancel)) = (
        button("Run", 1, Token::Run(command.to_owned())),
        button("Cancel", 2, Token::Cancel),
    ) else {
        return ephemeral(&markup::inert(&format!(
            "`{command}` has too long a name for a Discord button; type it with `/{}`.",
            endpoint.command
        )));
    };
    let question = format!("Run `/{} {command}`?", endpoint.command);
    private_message(
        UPDATE_MESSAGE,
        &question,
        vec![json!({ "type": 1, "components": [run, cancel] })],
    )
}

fn cancelled() -> Response {
    private_message(UPDATE_MESSAGE, "Cancelled; nothing was run.", Vec::new())
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
    format!(
        "Nothing was submitted. Fix this with the button below (what you entered is kept), or start over with `/{command} build`:\n{what}"
    )
}

/// The private answer to a form with mistakes: what is wrong, what was entered, and a
/// "Fix it" button reopening the form with it.
fn mistakes(
    app: &App,
    endpoint: &Endpoint,
    user: &str,
    spec: &CommandSpec,
    e: &BuildError,
    entered: &BTreeMap<String, String>,
) -> Response {
    let (embed, dropped) = builder_fix::carried(entered);
    let mut content = explain(e, &endpoint.command);
    if !dropped.is_empty() {
        content.push_str(&format!(
            "\n(Too long to keep here, type again: {}.)",
            dropped.iter().map(|d| markup::escape(d)).collect::<Vec<_>>().join(", ")
        ));
    }
    let rows: Vec<serde_json::Value> = builder_fix::fix_row(&app.signer, user, &spec.name)
        .into_iter()
        .collect();
    let mut data = message_body(&content, None);
    data["components"] = json!(rows);
    data["embeds"] = json!([embed]);
    data["flags"] = json!(EPHEMERAL);
    reply(CHANNEL_MESSAGE, Some(data))
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
    let entered = inputs(&mi);
    let text = match values(&spec, entered.clone()).and_then(|v| command_builder::text(&spec, &v)) {
        Ok(t) => t,
        Err(e) => return mistakes(app, endpoint, &mi.user.id.to_string(), &spec, &e, &entered),
    };
    tracing::info!(command = %spec.name, user = %who.user, "Discord builder form submitted");
    let origin = origin_of!(mi);
    endpoint.submit(app, who, text, origin).await
}
