//! The fake's modals, as strict as Slack's: views.open takes a trigger_id Slack handed out
//! (with a slash command or a click) at most 3 s ago and never used before; views.update
//! takes the id of an open view (and, when given, its current hash); both refuse a view over
//! Block Kit's limits or with block or element types Slack does not know.
//!
//! Limits, checked against Slack's reference (December 2026):
//! - https://docs.slack.dev/reference/views/modal-views: title, submit and close ≤ 24
//!   characters, ≤ 100 blocks, private_metadata ≤ 3000, callback_id ≤ 255; an input block
//!   requires the view to have a submit button.
//! - https://docs.slack.dev/reference/block-kit/blocks/input-block: label and hint ≤ 2000,
//!   block_id ≤ 255.
//! - https://docs.slack.dev/reference/block-kit/block-elements/select-menu-element: a
//!   static_select has 1–100 options, a placeholder ≤ 150, an action_id ≤ 255.
//! - https://docs.slack.dev/reference/block-kit/composition-objects/option-object: option
//!   text and description ≤ 75, value ≤ 150 characters.
//! - https://docs.slack.dev/reference/block-kit/block-elements/plain-text-input-element:
//!   max_length ≤ 3000, placeholder ≤ 150.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// How long a trigger_id may be exchanged (Slack: 3 seconds).
pub const TRIGGER_VALIDITY: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Views {
    /// trigger_id -> (issued at, already used).
    triggers: HashMap<String, (Instant, bool)>,
    /// view id -> (view as last opened or updated, its hash).
    open: HashMap<String, (Value, String)>,
    last: Option<String>,
    next: u64,
}

const BLOCKS: &[&str] = &[
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "section",
    "video",
    "rich_text",
];
const ELEMENTS: &[&str] = &[
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "image",
    "multi_static_select",
    "number_input",
    "overflow",
    "plain_text_input",
    "radio_buttons",
    "static_select",
    "timepicker",
    "url_text_input",
];

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn check_text(errors: &mut Vec<String>, what: &str, v: &Value, max: usize) {
    if v.is_null() {
        return;
    }
    if chars(&v["text"]) == 0 {
        errors.push(format!("{what}: must be a text object with text"));
    } else if chars(&v["text"]) > max {
        errors.push(format!("{what}: must be less than {} characters", max + 1));
    }
}

fn check_element(errors: &mut Vec<String>, at: &str, e: &Value) {
    let kind = e["type"].as_str().unwrap_or_default();
    if !ELEMENTS.contains(&kind) {
        errors.push(format!("{at}: unknown element type '{kind}'"));
        return;
    }
    if chars(&e["action_id"]) > 255 {
        errors.push(format!("{at}.action_id: must be less than 256 characters"));
    }
    check_text(errors, &format!("{at}.placeholder"), &e["placeholder"], 150);
    if kind == "plain_text_input" && e["max_length"].as_u64().is_some_and(|m| m > 3000) {
        errors.push(format!("{at}.max_length: must be at most 3000"));
    }
    if kind != "static_select" {
        return;
    }
    let options = e["options"].as_array().cloned().unwrap_or_default();
    if options.is_empty() || options.len() > 100 {
        errors.push(format!("{at}.options: must have 1 to 100 items, has {}", options.len()));
    }
    for (i, o) in options.iter().enumerate() {
        check_text(errors, &format!("{at}.options[{i}].text"), &o["text"], 75);
        check_text(errors, &format!("{at}.options[{i}].description"), &o["description"], 75);
        if chars(&o["value"]) == 0 || chars(&o["value"]) > 150 {
            errors.push(format!("{at}.options[{i}].value: must be 1 to 150 characters"));
        }
    }
    if !e["initial_option"].is_null() && !options.iter().any(|o| o["value"] == e["initial_option"]["value"]) {
        errors.push(format!("{at}.initial_option: must be one of the options"));
    }
}

/// Slack's objections to `view`, empty when it would take it.
pub fn check_view(view: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    if view["type"] != "modal" {
        errors.push("type: must be 'modal'".into());
    }
    check_text(&mut errors, "title", &view["title"], 24);
    if view["title"].is_null() {
        errors.push("title: is required".into());
    }
    check_text(&mut errors, "submit", &view["submit"], 24);
    check_text(&mut errors, "close", &view["close"], 24);
    if chars(&view["private_metadata"]) > 3000 {
        errors.push("private_metadata: must be less than 3001 characters".into());
    }
    if chars(&view["callback_id"]) > 255 {
        errors.push("callback_id: must be less than 256 characters".into());
    }
    let blocks = view["blocks"].as_array().cloned().unwrap_or_default();
    if blocks.len() > 100 {
        errors.push(format!("blocks: must have at most 100 items, has {}", blocks.len()));
    }
    let mut ids = HashSet::new();
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("blocks[{i}]");
        let kind = b["type"].as_str().unwrap_or_default();
        if !BLOCKS.contains(&kind) {
            errors.push(format!("{at}: unknown block type '{kind}'"));
            continue;
        }
        if let Some(id) = b["block_id"].as_str()
            && (id.chars().count() > 255 || !ids.insert(id.to_owned()))
        {
            errors.push(format!("{at}.block_id: must be unique and less than 256 characters"));
        }
        match kind {
            "input" => {
                if view["submit"].is_null() {
                    errors.push(format!("{at}: an input block needs the view to have submit"));
                }
                check_text(&mut errors, &format!("{at}.label"), &b["label"], 2000);
                check_text(&mut errors, &format!("{at}.hint"), &b["hint"], 2000);
                check_element(&mut errors, &format!("{at}.element"), &b["element"]);
            }
            "actions" => {
                let elements = b["elements"].as_array().cloned().unwrap_or_default();
                if elements.is_empty() || elements.len() > 25 {
                    errors.push(format!("{at}.elements: must have 1 to 25 items"));
                }
                for (j, e) in elements.iter().enumerate() {
                    check_element(&mut errors, &format!("{at}.elements[{j}]"), e);
                }
            }
            _ => {}
        }
    }
    errors
}

fn invalid(errors: Vec<String>) -> Value {
    json!({ "ok": false, "error": "invalid_arguments", "response_metadata": { "messages": errors } })
}

impl Views {
    pub fn issue(&mut self, trigger_id: &str, at: Instant) {
        self.triggers.insert(trigger_id.to_owned(), (at, false));
    }

    pub fn last(&self) -> Option<Value> {
        self.open.get(self.last.as_deref()?).map(|(v, _)| v.clone())
    }

    pub fn get(&self, id: &str) -> Option<(Value, String)> {
        self.open.get(id).cloned()
    }

    /// The view as Slack returns it: with its id, hash and an empty state.
    fn store(&mut self, id: String, mut view: Value) -> Value {
        self.next += 1;
        let hash = format!("{}.h{}", self.next, id);
        view["id"] = json!(id);
        view["hash"] = json!(hash);
        view["state"] = json!({ "values": {} });
        self.open.insert(id.clone(), (view.clone(), hash));
        self.last = Some(id);
        json!({ "ok": true, "view": view })
    }

    pub fn open(&mut self, body: &Value) -> Value {
        let trigger = body["trigger_id"].as_str().unwrap_or_default();
        let error = match self.triggers.get(trigger) {
            None => Some("invalid_trigger_id"),
            Some((_, true)) => Some("exchanged_trigger_id"),
            Some((at, false)) if at.elapsed() > TRIGGER_VALIDITY => Some("expired_trigger_id"),
            Some(_) => None,
        };
        if let Some(error) = error {
            return json!({ "ok": false, "error": error });
        }
        let errors = check_view(&body["view"]);
        if !errors.is_empty() {
            return invalid(errors);
        }
        if let Some(t) = self.triggers.get_mut(trigger) {
            t.1 = true;
        }
        let id = format!("V{:08}", self.open.len() + 1);
        self.store(id, body["view"].clone())
    }

    pub fn update(&mut self, body: &Value) -> Value {
        let id = body["view_id"].as_str().unwrap_or_default().to_owned();
        let Some((_, hash)) = self.open.get(&id) else {
            return json!({ "ok": false, "error": "not_found" });
        };
        if body["hash"].as_str().is_some_and(|h| h != hash) {
            return json!({ "ok": false, "error": "hash_conflict" });
        }
        let errors = check_view(&body["view"]);
        if !errors.is_empty() {
            return invalid(errors);
        }
        self.store(id, body["view"].clone())
    }
}
