//! Slash-command options back into the text the router understands.
//!
//! Discord hands over named, typed options; the router wants the words a person would type.
//! Rather than trusting `usage` (it is free text, and the generated one omits the literal words
//! of the pattern), the spec's own regex is rendered: literals are copied, named groups take the
//! option of the same name, optional parts appear only when they hold a given option. So any
//! spec that parses can be reached from Discord without Discord-specific configuration.

use std::collections::BTreeMap;

use regex_syntax::hir::{Class, Hir, HirKind};
use serenity::model::application::{CommandDataOption, CommandDataOptionValue};

use super::command_tree::SHARE_OPTION;
use crate::commands::{
    CommandSpec, Router,
    spec::{Answer, ArgType},
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("`/{0}` is not one of deckhand's commands; the registered commands may be out of date")]
    UnknownCommand(String),
    #[error("option `{option}` of `{command}` has an unsupported type")]
    OptionType { command: String, option: String },
    #[error("option `{option}` of `{command}` cannot contain spaces")]
    Spaces { command: String, option: String },
    #[error("`{command}` has no option `{option}`; the registered commands may be out of date")]
    UnknownOption { command: String, option: String },
    #[error("cannot build `{command}` from these options: {reason}")]
    Render { command: String, reason: String },
}

/// The spec name (`env create`) and options (name -> value) of an invocation, walking
/// Discord's subcommand groups and subcommands.
pub fn flatten(options: &[CommandDataOption]) -> Result<(Vec<String>, BTreeMap<String, String>), TextError> {
    let mut words = Vec::new();
    let mut values = BTreeMap::new();
    let mut level = options;
    loop {
        let mut next = None;
        for o in level {
            let value = match &o.value {
                CommandDataOptionValue::SubCommandGroup(sub) | CommandDataOptionValue::SubCommand(sub) => {
                    words.push(o.name.clone());
                    next = Some(sub.as_slice());
                    continue;
                }
                CommandDataOptionValue::String(s) => s.clone(),
                CommandDataOptionValue::Integer(i) => i.to_string(),
                CommandDataOptionValue::Boolean(b) => b.to_string(),
                CommandDataOptionValue::Number(n) => n.to_string(),
                _ => {
                    return Err(TextError::OptionType {
                        command: words.join(" "),
                        option: o.name.clone(),
                    });
                }
            };
            values.insert(o.name.clone(), value);
        }
        match next {
            Some(sub) => level = sub,
            None => return Ok((words, values)),
        }
    }
}

/// The command text for `options` of the top-level command, e.g. `deploy nginx:1.27 to web
/// replicas=2`, ready for `App::submit`.
pub fn command_text(router: &Router, options: &[CommandDataOption]) -> Result<String, TextError> {
    let (words, mut values) = flatten(options)?;
    let name = words.join(" ");
    let spec = router
        .get(&name)
        .ok_or_else(|| TextError::UnknownCommand(name.clone()))?;
    // The `share` option of a read-only command is the text's `--share` flag.
    let share = spec.answer == Answer::Private && values.remove(SHARE_OPTION).is_some_and(|v| v == "true");
    let text = render(spec, &values)?;
    Ok(if share {
        format!("{text} {}", crate::surface::SHARE_FLAG)
    } else {
        text
    })
}

/// Renders `spec`'s pattern with `values` (argument name -> value).
pub fn render(spec: &CommandSpec, values: &BTreeMap<String, String>) -> Result<String, TextError> {
    for (option, value) in values {
        let Some(arg) = spec.args.iter().find(|a| &a.name == option) else {
            return Err(TextError::UnknownOption {
                command: spec.name.clone(),
                option: option.clone(),
            });
        };
        // A space would let one option smuggle in another (`env: "prod as other"`); only free
        // text may have them, and patterns give free text the rest of the line.
        if arg.kind != ArgType::Text && value.chars().any(char::is_whitespace) {
            return Err(TextError::Spaces {
                command: spec.name.clone(),
                option: option.clone(),
            });
        }
    }
    let render_err = |reason: String| TextError::Render {
        command: spec.name.clone(),
        reason,
    };
    let hir = regex_syntax::parse(spec.pattern.as_str()).map_err(|e| render_err(e.to_string()))?;
    let (text, used) = fill(&hir, values).ok_or_else(|| render_err("a required option is missing".into()))?;
    if used.len() != values.len() {
        let left: Vec<&str> = values
            .keys()
            .filter(|k| !used.contains(k))
            .map(String::as_str)
            .collect();
        return Err(render_err(format!(
            "{} only fit(s) together with other options",
            left.join(", ")
        )));
    }
    Ok(text)
}

/// The text for `hir` and the names of the values it used; `None` when a part that must be
/// there needs a value nobody gave (or cannot be written down, like `\d` outside a group).
fn fill(hir: &Hir, values: &BTreeMap<String, String>) -> Option<(String, Vec<String>)> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some((String::new(), Vec::new())),
        HirKind::Literal(l) => Some((String::from_utf8_lossy(&l.0).into_owned(), Vec::new())),
        // Outside a group, only a separator has an obvious spelling.
        HirKind::Class(c) if class_has_space(c) => Some((" ".into(), Vec::new())),
        HirKind::Class(_) => None,
        HirKind::Capture(c) => match &c.name {
            Some(name) => {
                let value = values.get(name.as_ref())?;
                Some((value.clone(), vec![name.to_string()]))
            }
            None => fill(&c.sub, values),
        },
        HirKind::Concat(parts) => {
            let mut text = String::new();
            let mut used = Vec::new();
            for p in parts {
                let (t, u) = fill(p, values)?;
                text.push_str(&t);
                used.extend(u);
            }
            Some((text, used))
        }
        // The branch that places the most values; the first on a tie.
        HirKind::Alternation(branches) => {
            branches
                .iter()
                .filter_map(|b| fill(b, values))
                .fold(None, |best: Option<(String, Vec<String>)>, cand| match best {
                    Some(b) if b.1.len() >= cand.1.len() => Some(b),
                    _ => Some(cand),
                })
        }
        HirKind::Repetition(r) if r.min == 0 => match fill(&r.sub, values) {
            Some((t, u)) if !u.is_empty() => Some((t, u)),
            _ => Some((String::new(), Vec::new())),
        },
        HirKind::Repetition(r) => {
            let (t, u) = fill(&r.sub, values)?;
            let n = usize::try_from(r.min).ok()?;
            Some((t.repeat(n), u))
        }
    }
}

fn class_has_space(c: &Class) -> bool {
    match c {
        Class::Unicode(u) => u.ranges().iter().any(|r| r.start() <= ' ' && ' ' <= r.end()),
        Class::Bytes(b) => b.ranges().iter().any(|r| r.start() <= b' ' && b' ' <= r.end()),
    }
}
