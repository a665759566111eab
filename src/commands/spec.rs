//! Command specs: the YAML ops edit, and its validated, compiled form.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::Path,
};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use crate::{configuration::Config, domain::HumanDuration, identity::Subject};

/// The specs shipped in commands/, compiled in so the binary runs without the directory.
pub const BUILTIN: &[(&str, &str)] = &[
    ("commands/core.yaml", include_str!("../../commands/core.yaml")),
    ("commands/env.yaml", include_str!("../../commands/env.yaml")),
    ("commands/app.yaml", include_str!("../../commands/app.yaml")),
    ("commands/proxy.yaml", include_str!("../../commands/proxy.yaml")),
    ("commands/exec.yaml", include_str!("../../commands/exec.yaml")),
    ("commands/shell.yaml", include_str!("../../commands/shell.yaml")),
    ("commands/service.yaml", include_str!("../../commands/service.yaml")),
    ("commands/loadtest.yaml", include_str!("../../commands/loadtest.yaml")),
];

/// Names an approval `when` may read besides the command's own arguments.
pub const CONTEXT_VARS: &[&str] = &["requester", "surface"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    help: String,
    #[serde(default)]
    usage: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    pattern: String,
    #[serde(default)]
    args: BTreeMap<String, RawArg>,
    action: String,
    allow: Vec<String>,
    #[serde(default)]
    approval: Option<RawApproval>,
    #[serde(default)]
    answer: Answer,
}

/// Where a chat command's answer goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// A status message in the channel with the request's thread (what changes things).
    #[default]
    Thread,
    /// Only the person who asked sees it, and the channel nothing (read-only commands);
    /// `--share` at the end of the command posts it in the channel instead.
    Private,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArg {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    help: String,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    max: Option<i64>,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    #[serde(default)]
    when: Option<String>,
    approvers: Vec<String>,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    self_approve: bool,
    #[serde(default)]
    expires: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArgType {
    /// A DNS-1123 label (environment, app, namespace names).
    Name,
    Duration,
    Image,
    Int {
        min: i64,
        max: i64,
    },
    Enum(Vec<String>),
    /// One of the environment tiers in the configuration.
    Tier(Vec<String>),
    RequestId,
    /// Free text, e.g. a denial reason; at most 500 characters.
    Text,
}

impl ArgType {
    /// What a person may type, for usage and error messages.
    pub fn allowed(&self) -> String {
        match self {
            ArgType::Name => "a DNS-1123 name: lowercase letters, digits and '-', at most 63 characters".into(),
            ArgType::Duration => "a duration such as 30m, 8h or 2d".into(),
            ArgType::Image => "an image reference such as ghcr.io/acme/shop:1.4.2".into(),
            ArgType::Int { min, max } => format!("a whole number from {min} to {max}"),
            ArgType::Enum(v) | ArgType::Tier(v) => format!("one of {}", v.join(", ")),
            ArgType::RequestId => "a request id such as r-0pcx9k2m4f7hqa".into(),
            ArgType::Text => "text of at most 500 characters".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ArgSpec {
    pub name: String,
    pub kind: ArgType,
    pub help: String,
    pub default: Option<String>,
    pub optional: bool,
}

/// A snapshot of the rule that applied, stored with the request so later spec edits do
/// not change what a pending request needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub approvers: Vec<Subject>,
    pub count: u32,
    pub self_approve: bool,
    pub expires: HumanDuration,
}

#[derive(Debug, Clone)]
pub struct ApprovalRule {
    pub when: Condition,
    pub policy: ApprovalPolicy,
}

#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub name: String,
    pub help: String,
    pub usage: String,
    pub examples: Vec<String>,
    pub pattern: Regex,
    /// In the order their groups appear in the pattern.
    pub args: Vec<ArgSpec>,
    pub action: String,
    pub allow: Vec<Subject>,
    pub approval: Option<ApprovalRule>,
    pub answer: Answer,
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub command: Option<String>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(c) = &self.command {
            write!(f, "command `{c}`: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a set of spec files, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in command specs:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// What specs are checked against: the actions this build has (with the facts each can
/// tell an approval rule, such as an environment's tier) and the configuration.
pub struct SpecContext<'a> {
    pub actions: &'a HashMap<String, Vec<String>>,
    pub config: &'a Config,
}

pub fn load_builtin(ctx: &SpecContext<'_>) -> Result<Vec<CommandSpec>, SpecErrors> {
    compile_sources(BUILTIN.iter().map(|(f, t)| (f.to_string(), t.to_string())), ctx)
}

/// Loads every `*.yaml`/`*.yml` file of `dir`, in name order.
pub fn load_dir(dir: &Path, ctx: &SpecContext<'_>) -> Result<Vec<CommandSpec>, SpecErrors> {
    let dir_error = |message: String| {
        SpecErrors(vec![SpecError {
            file: dir.display().to_string(),
            command: None,
            field: "directory".into(),
            message,
        }])
    };
    let entries = std::fs::read_dir(dir).map_err(|e| dir_error(format!("cannot read: {e}")))?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(dir_error("holds no *.yaml command specs".into()));
    }
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::read_to_string(&p) {
            Ok(t) => sources.push((p.display().to_string(), t)),
            Err(e) => errors.push(SpecError {
                file: p.display().to_string(),
                command: None,
                field: "file".into(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    match compile_sources(sources, ctx) {
        Ok(specs) if errors.is_empty() => Ok(specs),
        Ok(_) => Err(SpecErrors(errors)),
        Err(SpecErrors(more)) => {
            errors.extend(more);
            Err(SpecErrors(errors))
        }
    }
}

pub fn compile_sources(
    sources: impl IntoIterator<Item = (String, String)>,
    ctx: &SpecContext<'_>,
) -> Result<Vec<CommandSpec>, SpecErrors> {
    let mut errors = Vec::new();
    let mut specs: Vec<CommandSpec> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in sources {
        let raws: Vec<RawSpec> = match yaml_serde::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(SpecError {
                    file,
                    command: None,
                    field: "yaml".into(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        for raw in raws {
            let mut c = Compiler {
                file: &file,
                command: raw.name.clone(),
                errors: &mut errors,
            };
            if let Some(first) = seen.get(&raw.name) {
                c.err("name", format!("is also defined in {first}"));
                continue;
            }
            seen.insert(raw.name.clone(), file.clone());
            if let Some(spec) = c.compile(raw, ctx) {
                specs.push(spec);
            }
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(SpecErrors(errors))
    }
}

struct Compiler<'a> {
    file: &'a str,
    command: String,
    errors: &'a mut Vec<SpecError>,
}

impl Compiler<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.to_owned(),
            command: Some(self.command.clone()),
            field: field.into(),
            message: message.into(),
        });
    }

    fn subjects(&mut self, field: &str, raw: &[String], config: &Config) -> Vec<Subject> {
        let mut out = Vec::new();
        for s in raw {
            match s.parse::<Subject>() {
                Ok(Subject::Group(g)) if !config.groups.contains_key(g.as_str()) => self.err(
                    field,
                    format!("unknown group '{g}' (not in the configuration's [groups])"),
                ),
                Ok(Subject::User(u)) if !config.users.contains_key(u.as_str()) => self.err(
                    field,
                    format!("unknown user '{u}' (not in the configuration's [users])"),
                ),
                Ok(subject) => out.push(subject),
                Err(e) => self.err(field, e.to_string()),
            }
        }
        if raw.is_empty() {
            self.err(
                field,
                "must list at least one subject (group:NAME, user:NAME or everyone)",
            );
        }
        out
    }

    fn compile(&mut self, raw: RawSpec, ctx: &SpecContext<'_>) -> Option<CommandSpec> {
        let before = self.errors.len();
        let name_ok = !raw.name.is_empty()
            && raw.name.split(' ').all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !name_ok {
            self.err(
                "name",
                "must be lowercase words separated by single spaces, e.g. 'env create'",
            );
        }
        if raw.help.trim().is_empty() {
            self.err("help", "must say in a line what the command does");
        }
        let facts = ctx.actions.get(&raw.action).cloned().unwrap_or_default();
        if !ctx.actions.contains_key(&raw.action) {
            let mut known: Vec<_> = ctx.actions.keys().map(String::as_str).collect();
            known.sort_unstable();
            self.err(
                "action",
                format!("unknown action '{}' (this build has: {})", raw.action, known.join(", ")),
            );
        }
        let allow = self.subjects("allow", &raw.allow, ctx.config);

        let tiers = crate::cluster::clusters::tier_choices(ctx.config);
        // Anchored so a pattern can never match part of what was typed.
        let pattern = match Regex::new(&format!(
            "^(?:{})$",
            raw.pattern.trim_start_matches('^').trim_end_matches('$')
        )) {
            Ok(r) => Some(r),
            Err(e) => {
                self.err("pattern", format!("is not a valid regex: {e}"));
                None
            }
        };
        let mut args = Vec::new();
        if let Some(re) = &pattern {
            if name_ok && !raw.pattern.trim_start_matches('^').starts_with(&raw.name) {
                self.err("pattern", format!("must start with the command name '{}'", raw.name));
            }
            let groups: Vec<&str> = re.capture_names().flatten().collect();
            for g in &groups {
                if !raw.args.contains_key(*g) {
                    self.err("pattern", format!("group '{g}' has no entry under args"));
                }
            }
            for name in raw.args.keys() {
                if !groups.contains(&name.as_str()) {
                    self.err(format!("args.{name}"), "is not a named group in pattern");
                }
            }
            for g in groups {
                let Some(a) = raw.args.get(g) else { continue };
                if let Some(spec) = self.arg(g, a, &tiers) {
                    args.push(spec);
                }
            }
        }

        if raw.answer == Answer::Private && raw.approval.is_some() {
            self.err(
                "answer",
                "a private answer cannot wait for an approval (approvers could not see it); use `answer: thread`",
            );
        }
        let approval = raw.approval.map(|a| {
            let when = match a
                .when
                .as_deref()
                .map(Condition::parse)
                .unwrap_or(Ok(Condition::Const(true)))
            {
                Ok(c) => {
                    for v in c.variables() {
                        if !CONTEXT_VARS.contains(&v) && !raw.args.contains_key(v) && !facts.iter().any(|f| f == v) {
                            let mut known: Vec<&str> = CONTEXT_VARS.to_vec();
                            known.extend(facts.iter().map(String::as_str));
                            self.err(
                                "approval.when",
                                format!(
                                    "reads '{v}', which is neither an argument nor one of {}",
                                    known.join(", ")
                                ),
                            );
                        }
                    }
                    c
                }
                Err(e) => {
                    self.err("approval.when", e.to_string());
                    Condition::Const(true)
                }
            };
            let approvers = self.subjects("approval.approvers", &a.approvers, ctx.config);
            if a.count == 0 {
                self.err("approval.count", "must be at least 1");
            }
            let expires = match a.expires.as_deref().map(str::parse::<HumanDuration>) {
                None => ctx.config.approvals.default_expires,
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    self.err("approval.expires", e.to_string());
                    ctx.config.approvals.default_expires
                }
            };
            ApprovalRule {
                when,
                policy: ApprovalPolicy {
                    approvers,
                    count: a.count,
                    self_approve: a.self_approve,
                    expires,
                },
            }
        });

        if self.errors.len() > before {
            return None;
        }
        let usage = raw.usage.unwrap_or_else(|| {
            let mut u = raw.name.clone();
            for a in &args {
                let required = a.default.is_none() && !a.optional;
                u.push_str(&if required {
                    format!(" <{}>", a.name)
                } else {
                    format!(" [{}]", a.name)
                });
            }
            u
        });
        Some(CommandSpec {
            name: raw.name,
            help: raw.help.trim().to_owned(),
            usage,
            examples: raw.examples,
            pattern: pattern?,
            args,
            action: raw.action,
            allow,
            approval,
            answer: raw.answer,
            file: self.file.to_owned(),
        })
    }

    fn arg(&mut self, name: &str, a: &RawArg, tiers: &[String]) -> Option<ArgSpec> {
        let field = format!("args.{name}");
        let kind = match a.kind.as_str() {
            "name" => ArgType::Name,
            "duration" => ArgType::Duration,
            "image" => ArgType::Image,
            "request_id" => ArgType::RequestId,
            "text" => ArgType::Text,
            "tier" => ArgType::Tier(tiers.to_vec()),
            "int" => match (a.min, a.max) {
                (Some(min), Some(max)) if min <= max => ArgType::Int { min, max },
                (Some(_), Some(_)) => {
                    self.err(format!("{field}.min"), "must not be greater than max");
                    return None;
                }
                _ => {
                    self.err(&field, "type int needs both min and max");
                    return None;
                }
            },
            "enum" if !a.values.is_empty() => ArgType::Enum(a.values.clone()),
            "enum" => {
                self.err(format!("{field}.values"), "type enum needs a list of values");
                return None;
            }
            other => {
                self.err(
                    format!("{field}.type"),
                    format!("unknown type '{other}' (use name, duration, image, int, enum, tier, request_id or text)"),
                );
                return None;
            }
        };
        if let Some(d) = &a.default
            && let Err(e) = super::args::parse_value(name, &kind, d)
        {
            self.err(format!("{field}.default"), e);
            return None;
        }
        Some(ArgSpec {
            name: name.to_owned(),
            kind,
            help: a.help.clone(),
            default: a.default.clone(),
            optional: a.optional,
        })
    }
}
