//! The application command tree registered with Discord, built from the command specs:
//! one top-level command (`/deckhand`), a subcommand per one-word spec, a subcommand group
//! per first word of the others, and typed options per argument; plus `build`, which opens
//! the command builder (builder.rs).
//!
//! Serialised with serde structs of our own rather than serenity's builders: those take
//! integer bounds as `u64`, which cannot say `min: -5`, and the limits below are easier to
//! check on plain fields.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::commands::{
    CommandSpec, Router,
    spec::{Answer, ArgSpec, ArgType},
};

/// Discord's limits for application commands (developer docs, "Application Commands").
pub mod limits {
    pub const NAME_MAX: usize = 32;
    pub const DESCRIPTION_MAX: usize = 100;
    pub const OPTIONS_MAX: usize = 25;
    pub const CHOICES_MAX: usize = 25;
    pub const CHOICE_MAX: usize = 100;
    /// Name, description and choice names/values of a command and everything under it.
    pub const TOTAL_CHARS_MAX: usize = 4000;
    /// Integer options take values in JavaScript's safe integer range.
    pub const INT_ABS_MAX: i64 = 9_007_199_254_740_991;
    pub const STRING_LENGTH_MAX: u16 = 6000;
}

const SUB_COMMAND: u8 = 1;
const SUB_COMMAND_GROUP: u8 = 2;
const STRING: u8 = 3;
const INTEGER: u8 = 4;
const BOOLEAN: u8 = 5;
/// The boolean option a read-only command has: true posts its answer in the channel.
pub const SHARE_OPTION: &str = "share";
/// The subcommand that opens the command builder (builder.rs); Discord cannot invoke the
/// top-level command bare when it has subcommands. A spec of that name takes precedence.
pub const BUILDER: &str = "build";

#[derive(Debug, Clone, Serialize)]
pub struct AppCommand {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: u8,
    pub description: String,
    pub options: Vec<CommandOption>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandOption {
    #[serde(rename = "type")]
    pub kind: u8,
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<CommandOption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub name: String,
    pub value: String,
}

/// A spec (or the tree) that Discord cannot take; names the spec and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: command `{spec}`: {message}")]
pub struct TreeError {
    pub file: String,
    pub spec: String,
    pub message: String,
}

/// Every problem, not just the first, like spec validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TreeErrors(pub Vec<TreeError>);

impl std::fmt::Display for TreeErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} command spec(s) do not fit Discord's limits:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

fn option(kind: u8, name: &str, description: &str) -> CommandOption {
    CommandOption {
        kind,
        name: name.to_owned(),
        description: description.to_owned(),
        required: false,
        choices: Vec::new(),
        options: Vec::new(),
        min_value: None,
        max_value: None,
        max_length: None,
    }
}

/// Discord's name rule, restricted to what specs can hold: 1-32 of lowercase letters,
/// digits, `-` and `_`.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.chars().count() > limits::NAME_MAX {
        return Some(format!("name `{name}` must be 1 to {} characters", limits::NAME_MAX));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Some(format!(
            "name `{name}` may only hold lowercase letters, digits, '-' and '_'"
        ));
    }
    None
}

fn description_problem(what: &str, text: &str) -> Option<String> {
    let n = text.chars().count();
    (n == 0 || n > limits::DESCRIPTION_MAX).then(|| {
        format!(
            "{what} is {n} characters; Discord takes 1 to {}",
            limits::DESCRIPTION_MAX
        )
    })
}

/// The option for one argument; problems go to `problems`.
fn arg_option(arg: &ArgSpec, problems: &mut Vec<String>) -> CommandOption {
    let description = if arg.help.trim().is_empty() {
        arg.kind.allowed()
    } else {
        arg.help.trim().to_owned()
    };
    if let Some(p) = name_problem(&arg.name) {
        problems.push(format!("argument {p}"));
    }
    if let Some(p) = description_problem(&format!("the help of argument `{}`", arg.name), &description) {
        problems.push(p);
    }
    let mut o = option(STRING, &arg.name, &description);
    o.required = arg.default.is_none() && !arg.optional;
    match &arg.kind {
        ArgType::Int { min, max } => {
            o.kind = INTEGER;
            for v in [min, max] {
                if v.abs() > limits::INT_ABS_MAX {
                    problems.push(format!(
                        "argument `{}`: bound {v} is outside Discord's integer range",
                        arg.name
                    ));
                }
            }
            o.min_value = Some(*min);
            o.max_value = Some(*max);
        }
        ArgType::Enum(values) | ArgType::Tier(values) => {
            if values.len() > limits::CHOICES_MAX {
                problems.push(format!(
                    "argument `{}` has {} choices; Discord shows at most {}",
                    arg.name,
                    values.len(),
                    limits::CHOICES_MAX
                ));
            }
            for v in values {
                if v.is_empty() || v.chars().count() > limits::CHOICE_MAX {
                    problems.push(format!(
                        "argument `{}`: choice `{v}` must be 1 to {} characters",
                        arg.name,
                        limits::CHOICE_MAX
                    ));
                }
            }
            o.choices = values
                .iter()
                .map(|v| Choice {
                    name: v.clone(),
                    value: v.clone(),
                })
                .collect();
        }
        ArgType::Name => o.max_length = Some(63),
        ArgType::Text => o.max_length = Some(500),
        ArgType::Duration | ArgType::Image | ArgType::RequestId => {}
    }
    o
}

/// The subcommand for one spec (named after the spec's last word).
fn spec_subcommand(spec: &CommandSpec, problems: &mut Vec<String>) -> CommandOption {
    let word = spec.name.rsplit(' ').next().unwrap_or_default();
    if let Some(p) = name_problem(word) {
        problems.push(p);
    }
    if let Some(p) = description_problem("help", &spec.help) {
        problems.push(p);
    }
    let mut sub = option(SUB_COMMAND, word, &spec.help);
    let mut options: Vec<CommandOption> = spec.args.iter().map(|a| arg_option(a, problems)).collect();
    if spec.answer == Answer::Private {
        // Read-only commands answer the person alone; this posts the answer in the channel.
        options.push(option(BOOLEAN, SHARE_OPTION, "post the answer in the channel"));
    }
    // Discord wants required options before optional ones; the order of the rest stays.
    options.sort_by_key(|o| !o.required);
    if options.len() > limits::OPTIONS_MAX {
        problems.push(format!(
            "{} arguments; a Discord subcommand takes at most {}",
            options.len(),
            limits::OPTIONS_MAX
        ));
    }
    sub.options = options;
    sub
}

/// The `/deckhand` command for every spec of `router`, or every reason it cannot be.
pub fn build(router: &Router, command: &str) -> Result<AppCommand, TreeErrors> {
    let mut errors = Vec::new();
    let mut top: Vec<CommandOption> = Vec::new();
    // group name -> (index in `top`, the spec that created it)
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for spec in router.specs() {
        let mut problems = Vec::new();
        let words: Vec<&str> = spec.name.split(' ').collect();
        let sub = spec_subcommand(spec, &mut problems);
        match words.as_slice() {
            [one] => {
                if let Some(first) = owner.get(*one).filter(|_| groups.contains_key(*one)) {
                    problems.push(format!(
                        "`{one}` is already a subcommand group (from `{first}`); Discord cannot have both"
                    ));
                } else {
                    owner.insert((*one).to_owned(), spec.name.clone());
                    top.push(sub);
                }
            }
            [group, _] => {
                if let Some(name) = name_problem(group) {
                    problems.push(format!("group {name}"));
                }
                match groups.get(*group) {
                    Some(&i) => top[i].options.push(sub),
                    None if owner.contains_key(*group) => problems.push(format!(
                        "`{group}` is already a command of its own (`{}`); Discord cannot have both",
                        owner[*group]
                    )),
                    None => {
                        let mut g = option(SUB_COMMAND_GROUP, group, &format!("{group} commands"));
                        g.options.push(sub);
                        groups.insert((*group).to_owned(), top.len());
                        owner.insert((*group).to_owned(), spec.name.clone());
                        top.push(g);
                    }
                }
            }
            _ => problems.push(format!(
                "has {} words; Discord nests at most a group and a subcommand (two words)",
                words.len()
            )),
        }
        errors.extend(problems.into_iter().map(|message| TreeError {
            file: spec.file.clone(),
            spec: spec.name.clone(),
            message,
        }));
    }
    if owner.contains_key(BUILDER) {
        tracing::warn!("a command spec is named `{BUILDER}`; Discord users get no `/{command} {BUILDER}` form");
    } else {
        top.push(option(
            SUB_COMMAND,
            BUILDER,
            "Pick a command and fill in its arguments in a form",
        ));
    }
    for g in top.iter().filter(|o| o.kind == SUB_COMMAND_GROUP) {
        if g.options.len() > limits::OPTIONS_MAX {
            errors.push(TreeError {
                file: "commands".into(),
                spec: g.name.clone(),
                message: format!(
                    "group `{}` has {} commands; Discord takes at most {}",
                    g.name,
                    g.options.len(),
                    limits::OPTIONS_MAX
                ),
            });
        }
    }
    if top.len() > limits::OPTIONS_MAX {
        errors.push(TreeError {
            file: "commands".into(),
            spec: command.to_owned(),
            message: format!(
                "{} top-level commands and groups; Discord takes at most {}: group related commands under a shared first word",
                top.len(),
                limits::OPTIONS_MAX
            ),
        });
    }
    let mut tree = AppCommand {
        name: command.to_owned(),
        kind: 1,
        description: "Deckhand: self-service platform commands".into(),
        options: top,
    };
    fit_descriptions(&mut tree);
    let total = total_chars(&tree);
    if total > limits::TOTAL_CHARS_MAX {
        errors.push(TreeError {
            file: "commands".into(),
            spec: command.to_owned(),
            message: format!(
                "names, descriptions and choices add up to {total} characters; Discord takes at most {}",
                limits::TOTAL_CHARS_MAX
            ),
        });
    }
    if errors.is_empty() {
        Ok(tree)
    } else {
        Err(TreeErrors(errors))
    }
}

/// Discord counts every description towards the 4000-character budget of the one command.
/// When the specs' help texts run over it, descriptions are cut to the longest length that
/// fits, argument options first (chat users see the spec's full help with `help`).
fn fit_descriptions(tree: &mut AppCommand) {
    if total_chars(tree) <= limits::TOTAL_CHARS_MAX {
        return;
    }
    fn cap(options: &mut [CommandOption], max: usize, leaves_only: bool) {
        for o in options {
            let leaf = o.kind != SUB_COMMAND && o.kind != SUB_COMMAND_GROUP;
            if (leaf || !leaves_only) && o.description.chars().count() > max {
                let mut d: String = o.description.chars().take(max.saturating_sub(1)).collect();
                d.push('…');
                o.description = d;
            }
            cap(&mut o.options, max, leaves_only);
        }
    }
    for leaves_only in [true, false] {
        let original = tree.options.clone();
        for max in (8..limits::DESCRIPTION_MAX).rev() {
            cap(&mut tree.options, max, leaves_only);
            if total_chars(tree) <= limits::TOTAL_CHARS_MAX {
                return;
            }
            tree.options.clone_from(&original);
        }
        cap(&mut tree.options, 8, leaves_only);
    }
}

/// What Discord counts towards a command's size limit.
pub fn total_chars(c: &AppCommand) -> usize {
    fn opt(o: &CommandOption) -> usize {
        o.name.chars().count()
            + o.description.chars().count()
            + o.choices
                .iter()
                .map(|c| c.name.chars().count() + c.value.chars().count())
                .sum::<usize>()
            + o.options.iter().map(opt).sum::<usize>()
    }
    c.name.chars().count() + c.description.chars().count() + c.options.iter().map(opt).sum::<usize>()
}
