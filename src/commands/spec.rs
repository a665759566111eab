//! Command specs: the YAML ops edit, and its validated, compiled form (compiled and checked
//! in compile.rs).

use std::{collections::HashMap, fmt, path::Path};

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use super::compile::compile_sources;
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
