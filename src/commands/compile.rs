//! A command spec from its YAML to its compiled form, checked against this build's actions
//! and the configuration. Every problem in every file is collected (file, command, field and
//! what to write instead), so ops fix a spec directory in one pass, and a spec with any
//! problem compiles to nothing.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use super::{
    condition::Condition,
    spec::{
        Answer, ApprovalPolicy, ApprovalRule, ArgSpec, ArgType, CONTEXT_VARS, CommandSpec, SpecContext, SpecError,
        SpecErrors,
    },
};
use crate::{configuration::Config, domain::HumanDuration, identity::Subject};

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
        let name_ok = self.check_name_and_help(&raw);
        let facts = self.action_facts(&raw.action, ctx);
        let allow = self.subjects("allow", &raw.allow, ctx.config);
        let (pattern, args) = self.pattern_and_args(&raw, name_ok, ctx);
        if raw.answer == Answer::Private && raw.approval.is_some() {
            self.err(
                "answer",
                "a private answer cannot wait for an approval (approvers could not see it); use `answer: thread`",
            );
        }
        let approval = raw.approval.as_ref().map(|a| self.approval(a, &raw.args, &facts, ctx));
        if self.errors.len() > before {
            return None;
        }
        let usage = raw.usage.unwrap_or_else(|| usage(&raw.name, &args));
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

    /// Whether the name is well formed (the pattern is checked against it only then).
    fn check_name_and_help(&mut self, raw: &RawSpec) -> bool {
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
        name_ok
    }

    /// The facts `action` can tell an approval rule; none (and an error) for an unknown action.
    fn action_facts(&mut self, action: &str, ctx: &SpecContext<'_>) -> Vec<String> {
        if let Some(facts) = ctx.actions.get(action) {
            return facts.clone();
        }
        let mut known: Vec<_> = ctx.actions.keys().map(String::as_str).collect();
        known.sort_unstable();
        self.err(
            "action",
            format!("unknown action '{action}' (this build has: {})", known.join(", ")),
        );
        Vec::new()
    }

    /// The anchored pattern and its arguments, in the order of their groups.
    fn pattern_and_args(
        &mut self,
        raw: &RawSpec,
        name_ok: bool,
        ctx: &SpecContext<'_>,
    ) -> (Option<Regex>, Vec<ArgSpec>) {
        // Anchored so a pattern can never match part of what was typed.
        let pattern = match Regex::new(&format!(
            "^(?:{})$",
            raw.pattern.trim_start_matches('^').trim_end_matches('$')
        )) {
            Ok(r) => r,
            Err(e) => {
                self.err("pattern", format!("is not a valid regex: {e}"));
                return (None, Vec::new());
            }
        };
        if name_ok && !raw.pattern.trim_start_matches('^').starts_with(&raw.name) {
            self.err("pattern", format!("must start with the command name '{}'", raw.name));
        }
        let groups: Vec<&str> = pattern.capture_names().flatten().collect();
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
        let tiers = crate::cluster::clusters::tier_choices(ctx.config);
        let args = groups
            .iter()
            .filter_map(|g| raw.args.get(*g).map(|a| (*g, a)))
            .filter_map(|(g, a)| self.arg(g, a, &tiers))
            .collect();
        (Some(pattern), args)
    }

    fn approval(
        &mut self,
        a: &RawApproval,
        args: &BTreeMap<String, RawArg>,
        facts: &[String],
        ctx: &SpecContext<'_>,
    ) -> ApprovalRule {
        let when = self.when(a.when.as_deref(), args, facts);
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
    }

    /// An approval's `when`, reading only the command's arguments, the action's facts and
    /// [`CONTEXT_VARS`]; always, when there is none.
    fn when(&mut self, when: Option<&str>, args: &BTreeMap<String, RawArg>, facts: &[String]) -> Condition {
        let c = match when.map(Condition::parse).unwrap_or(Ok(Condition::Const(true))) {
            Ok(c) => c,
            Err(e) => {
                self.err("approval.when", e.to_string());
                return Condition::Const(true);
            }
        };
        for v in c.variables() {
            if !CONTEXT_VARS.contains(&v) && !args.contains_key(v) && !facts.iter().any(|f| f == v) {
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

/// The usage line a spec without one gets: `<required>` and `[optional]` arguments in order.
fn usage(name: &str, args: &[ArgSpec]) -> String {
    let mut u = name.to_owned();
    for a in args {
        let required = a.default.is_none() && !a.optional;
        u.push_str(&if required {
            format!(" <{}>", a.name)
        } else {
            format!(" [{}]", a.name)
        });
    }
    u
}
