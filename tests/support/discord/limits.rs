//! Discord's limits on what an interaction is answered with, checked on every answer the
//! tests receive (Discord refuses the whole response otherwise, and the person sees "This
//! interaction failed"): a modal holds 1 to 5 action rows of one text input each and a title
//! of at most 45 characters; every custom_id is at most 100 characters; a string select has
//! at most 25 options; an action row at most 5 buttons.

use serde_json::Value;

fn check_component(errors: &mut Vec<String>, at: &str, c: &Value) {
    if c["custom_id"].as_str().is_some_and(|id| id.chars().count() > 100) {
        errors.push(format!("{at}.custom_id: must be 100 or fewer in length"));
    }
    match c["type"].as_u64() {
        Some(1) => {
            let inner = c["components"].as_array().cloned().unwrap_or_default();
            if inner.is_empty() || inner.len() > 5 {
                errors.push(format!("{at}.components: must have 1 to 5 items"));
            }
            for (i, x) in inner.iter().enumerate() {
                check_component(errors, &format!("{at}.components[{i}]"), x);
            }
        }
        // A link button (style 5) opens its url: it has no custom_id; other buttons are
        // the reverse. Labels are at most 80 characters, urls at most 512.
        Some(2) => {
            let link = c["style"] == 5;
            if link != c["url"].is_string() || link == c["custom_id"].is_string() {
                errors.push(format!(
                    "{at}: a link button has a url and no custom_id, others the reverse"
                ));
            }
            if c["label"].as_str().is_some_and(|l| l.chars().count() > 80) {
                errors.push(format!("{at}.label: must be 80 or fewer in length"));
            }
            if c["url"].as_str().is_some_and(|u| u.chars().count() > 512) {
                errors.push(format!("{at}.url: must be 512 or fewer in length"));
            }
        }
        Some(3) if c["options"].as_array().is_some_and(|o| o.is_empty() || o.len() > 25) => {
            errors.push(format!("{at}.options: must have 1 to 25 items"));
        }
        Some(4) if c["label"].as_str().is_none_or(|l| l.chars().count() > 45) => {
            errors.push(format!("{at}.label: must be 1 to 45 in length"));
        }
        _ => {}
    }
}

/// Discord's objections to a message's components (a post or an edit).
pub fn check_message(body: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, c) in body["components"].as_array().into_iter().flatten().enumerate() {
        check_component(&mut errors, &format!("components[{i}]"), c);
    }
    errors
}

/// Discord's objections to an interaction response, empty when it would take it.
pub fn check_response(response: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let data = &response["data"];
    if response["type"] == 9 {
        if data["title"]
            .as_str()
            .is_none_or(|t| t.is_empty() || t.chars().count() > 45)
        {
            errors.push("data.title: must be 1 to 45 in length".into());
        }
        if data["custom_id"].as_str().is_none_or(str::is_empty) {
            errors.push("data.custom_id: required".into());
        }
        let rows = data["components"].as_array().cloned().unwrap_or_default();
        if rows.is_empty() || rows.len() > 5 {
            errors.push(format!("data.components: a modal has 1 to 5 rows, not {}", rows.len()));
        }
        for (i, r) in rows.iter().enumerate() {
            if r["components"]
                .as_array()
                .is_none_or(|c| c.len() != 1 || c[0]["type"] != 4)
            {
                errors.push(format!("data.components[{i}]: one text input per row"));
            }
        }
    }
    if data["custom_id"].as_str().is_some_and(|id| id.chars().count() > 100) {
        errors.push("data.custom_id: must be 100 or fewer in length".into());
    }
    for (i, c) in data["components"].as_array().into_iter().flatten().enumerate() {
        check_component(&mut errors, &format!("data.components[{i}]"), c);
    }
    errors
}
