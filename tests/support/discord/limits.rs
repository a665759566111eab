//! Discord's limits on what an interaction is answered with, checked on every answer the
//! tests receive (Discord refuses the whole response otherwise, and the person sees "This
//! interaction failed"): a modal holds 1 to 5 action rows of one text input each and a title
//! of at most 45 characters; every custom_id is at most 100 characters (and unique in its
//! message); a message has at most 5 action rows; an action row at most 5 buttons or one
//! string select alone; a string select 1 to 25 options (label and value 1 to 100
//! characters, description at most 100) and a placeholder of at most 150; a text input a
//! label of 1 to 45 characters, style 1 or 2, a placeholder of at most 100, a value of at
//! most 4000, min_length 0 to 4000 and max_length 1 to 4000 (Discord's component reference).

use serde_json::Value;

fn too_long(c: &Value, key: &str, max: usize) -> bool {
    c[key].as_str().is_some_and(|s| s.chars().count() > max)
}

fn check_select(errors: &mut Vec<String>, at: &str, c: &Value) {
    let options = c["options"].as_array().cloned().unwrap_or_default();
    if options.is_empty() || options.len() > 25 {
        errors.push(format!("{at}.options: must have 1 to 25 items"));
    }
    if too_long(c, "placeholder", 150) {
        errors.push(format!("{at}.placeholder: must be 150 or fewer in length"));
    }
    for (i, o) in options.iter().enumerate() {
        for key in ["label", "value"] {
            if o[key].as_str().is_none_or(|s| s.is_empty() || s.chars().count() > 100) {
                errors.push(format!("{at}.options[{i}].{key}: must be 1 to 100 in length"));
            }
        }
        if too_long(o, "description", 100) {
            errors.push(format!("{at}.options[{i}].description: must be 100 or fewer in length"));
        }
    }
}

fn check_text_input(errors: &mut Vec<String>, at: &str, c: &Value) {
    if c["label"]
        .as_str()
        .is_none_or(|l| l.is_empty() || l.chars().count() > 45)
    {
        errors.push(format!("{at}.label: must be 1 to 45 in length"));
    }
    if !matches!(c["style"].as_u64(), Some(1 | 2)) {
        errors.push(format!("{at}.style: must be 1 (short) or 2 (paragraph)"));
    }
    if too_long(c, "placeholder", 100) {
        errors.push(format!("{at}.placeholder: must be 100 or fewer in length"));
    }
    if too_long(c, "value", 4000) {
        errors.push(format!("{at}.value: must be 4000 or fewer in length"));
    }
    for (key, min) in [("min_length", 0), ("max_length", 1)] {
        if c[key].as_u64().is_some_and(|n| n < min || n > 4000) {
            errors.push(format!("{at}.{key}: must be {min} to 4000"));
        }
    }
}

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
            // A select fills its row: no second select, no buttons beside it.
            if inner.len() > 1 && inner.iter().any(|x| x["type"] != 2) {
                errors.push(format!("{at}.components: a select menu must be alone in its row"));
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
        Some(3) => check_select(errors, at, c),
        Some(4) => check_text_input(errors, at, c),
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
    let rows = data["components"].as_array().map_or(0, Vec::len);
    if rows > 5 {
        errors.push(format!(
            "data.components: a message or modal has at most 5 rows, not {rows}"
        ));
    }
    let custom_ids: Vec<&str> = data["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["components"].as_array().into_iter().flatten())
        .filter_map(|c| c["custom_id"].as_str())
        .collect();
    if custom_ids.iter().collect::<std::collections::BTreeSet<_>>().len() != custom_ids.len() {
        errors.push("data.components: custom_ids must be unique".into());
    }
    for (i, c) in data["components"].as_array().into_iter().flatten().enumerate() {
        check_component(&mut errors, &format!("data.components[{i}]"), c);
    }
    check_embeds(&mut errors, data);
    errors
}

/// Discord's embed limits (developer docs, "Embed Limits"): at most 10 embeds, a title at most
/// 256 characters, at most 25 fields, a field's name 1 to 256 and its value 1 to 1024, and
/// 6000 characters over all the embeds of a message.
fn check_embeds(errors: &mut Vec<String>, data: &Value) {
    let embeds = data["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.len() > 10 {
        errors.push(format!("data.embeds: at most 10, not {}", embeds.len()));
    }
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        if len(&e["title"]) > 256 {
            errors.push(format!("data.embeds[{i}].title: must be 256 or fewer in length"));
        }
        total += len(&e["title"]) + len(&e["description"]);
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 {
            errors.push(format!("data.embeds[{i}].fields: at most 25, not {}", fields.len()));
        }
        for (j, f) in fields.iter().enumerate() {
            let (name, value) = (len(&f["name"]), len(&f["value"]));
            if name == 0 || name > 256 {
                errors.push(format!("data.embeds[{i}].fields[{j}].name: must be 1 to 256 in length"));
            }
            if value == 0 || value > 1024 {
                errors.push(format!(
                    "data.embeds[{i}].fields[{j}].value: must be 1 to 1024 in length"
                ));
            }
            total += name + value;
        }
    }
    if total > 6000 {
        errors.push(format!("data.embeds: {total} characters in all, at most 6000"));
    }
}
