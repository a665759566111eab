//! The Block Kit modals deckhand opens: the command builder and the Deny reason form. Kept
//! within Slack's documented limits (a view over them is refused as `invalid_arguments`),
//! with everything a spec or a person wrote as plain_text, so nothing in it is markup.

use serde_json::{Value, json};

use crate::{command_builder::Field, commands::CommandSpec, store::RequestRecord};

/// Slack's limits (Block Kit reference: view, select menu and option objects).
pub const TITLE_MAX: usize = 24;
pub const BLOCKS_MAX: usize = 100;
pub const OPTIONS_MAX: usize = 100;
pub const OPTION_TEXT_MAX: usize = 75;
pub const OPTION_VALUE_MAX: usize = 150;
const SECTION_TEXT_MAX: usize = 3000;
const LABEL_MAX: usize = 2000;

pub const BUILDER_CALLBACK: &str = "deckhand_build";
pub const DENY_CALLBACK: &str = "deckhand_deny";
/// Action ids of the command selects (one per 100 commands): `deckhand_command_0`, …
pub const COMMAND_ACTION: &str = "deckhand_command_";
/// Block id of an argument's input: `arg:<name>`; its element's action id is `value`.
pub const ARG_BLOCK: &str = "arg:";
pub const REASON_BLOCK: &str = "reason";

/// At most `max` characters, an ellipsis marking a cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn plain(text: &str, max: usize) -> Value {
    json!({ "type": "plain_text", "text": clip(text, max), "emoji": false })
}

fn option(value: &str, description: Option<&str>) -> Value {
    let mut o = json!({ "text": plain(value, OPTION_TEXT_MAX), "value": value });
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        o["description"] = plain(d, OPTION_TEXT_MAX);
    }
    o
}

/// The command selects: one per 100 commands, each in its own actions block, so a choice
/// arrives at once as block_actions. A name too long for an option's value is left out (it
/// can still be typed).
fn command_selects(commands: &[(String, String)], chosen: Option<&str>) -> Vec<Value> {
    let usable: Vec<&(String, String)> = commands
        .iter()
        .filter(|(name, _)| name.chars().count() <= OPTION_VALUE_MAX)
        .collect();
    usable
        .chunks(OPTIONS_MAX)
        .enumerate()
        .map(|(i, chunk)| {
            let options: Vec<Value> = chunk.iter().map(|(n, h)| option(n, Some(h))).collect();
            let mut select = json!({
                "type": "static_select",
                "action_id": format!("{COMMAND_ACTION}{i}"),
                "placeholder": plain("Pick a command", 150),
                "options": options,
            });
            if let Some((n, h)) = chunk.iter().find(|(n, _)| Some(n.as_str()) == chosen) {
                select["initial_option"] = option(n, Some(h));
            }
            json!({ "type": "actions", "block_id": format!("command-{i}"), "elements": [select] })
        })
        .collect()
}

/// A select of the field's values when they fit one, else a text input whose hint lists them.
fn element(field: &Field) -> Value {
    match field.select(OPTIONS_MAX, OPTION_TEXT_MAX) {
        Some(choices) if choices.iter().all(|c| c.len() <= OPTION_VALUE_MAX) => {
            let options: Vec<Value> = choices.iter().map(|c| option(c, None)).collect();
            let mut e = json!({
                "type": "static_select", "action_id": "value",
                "placeholder": plain(&format!("Pick a {}", field.name), 150), "options": options,
            });
            if let Some(d) = field.default.as_deref().filter(|d| choices.iter().any(|c| c == d)) {
                e["initial_option"] = option(d, None);
            }
            e
        }
        _ => {
            let mut e = json!({ "type": "plain_text_input", "action_id": "value" });
            if let Some(d) = field.default.as_deref() {
                e["initial_value"] = json!(d);
            }
            e
        }
    }
}

fn input(field: &Field) -> Value {
    json!({
        "type": "input",
        "block_id": format!("{ARG_BLOCK}{}", field.name),
        "optional": field.optional,
        "label": plain(&field.name, LABEL_MAX),
        "hint": plain(&field.hint, LABEL_MAX),
        "element": element(field),
    })
}

/// The builder: the command selects and, once one is chosen, an input per argument.
pub fn builder(commands: &[(String, String)], chosen: Option<(&CommandSpec, &[Field])>, metadata: &str) -> Value {
    let mut blocks = command_selects(commands, chosen.map(|(s, _)| s.name.as_str()));
    if commands.is_empty() {
        blocks.push(
            json!({ "type": "section", "text": plain("You may not run any deckhand command yet.", SECTION_TEXT_MAX) }),
        );
    }
    let mut view = json!({
        "type": "modal",
        "callback_id": BUILDER_CALLBACK,
        "title": plain("Run a command", TITLE_MAX),
        "close": plain("Cancel", TITLE_MAX),
        "private_metadata": metadata,
    });
    if let Some((spec, fields)) = chosen {
        let about = format!("{}\nUsage: {}", spec.help, spec.usage);
        blocks.push(json!({ "type": "context", "elements": [plain(&about, SECTION_TEXT_MAX)] }));
        // Room for every argument a spec can have; a spec with more inputs than a modal
        // holds would be cut, and then refused on submission as missing a field.
        let room = BLOCKS_MAX.saturating_sub(blocks.len());
        blocks.extend(fields.iter().take(room).map(input));
        view["submit"] = plain("Run", TITLE_MAX);
    }
    view["blocks"] = Value::Array(blocks);
    view
}

/// The Deny form: what is denied, and a required reason.
pub fn deny(request: &RequestRecord, metadata: &str) -> Value {
    let what = format!("Deny {} ({})? It will not run.", request.text, request.id);
    json!({
        "type": "modal",
        "callback_id": DENY_CALLBACK,
        "title": plain("Deny request", TITLE_MAX),
        "submit": plain("Deny", TITLE_MAX),
        "close": plain("Cancel", TITLE_MAX),
        "private_metadata": metadata,
        "blocks": [
            { "type": "section", "text": plain(&what, SECTION_TEXT_MAX) },
            {
                "type": "input", "block_id": REASON_BLOCK, "optional": false,
                "label": plain("Why?", LABEL_MAX),
                "hint": plain("The requester and the thread see this.", LABEL_MAX),
                "element": { "type": "plain_text_input", "action_id": "value", "multiline": true, "max_length": 500 },
            },
        ],
    })
}
