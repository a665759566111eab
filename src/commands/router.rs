//! Text in, a validated and authorized command out. Pure: no I/O, so it is cheap to call
//! from any adapter and easy to test table-driven.

use std::{collections::BTreeMap, collections::HashMap, sync::Arc};

pub use super::bind::TIER_CLUSTER;
use super::{
    args::Args,
    bind::bind,
    spec::{ApprovalPolicy, CommandSpec},
};
use crate::{domain::Surface, identity::Principal};

#[derive(Debug, Clone)]
pub struct Routed {
    pub spec: Arc<CommandSpec>,
    pub args: Args,
}

impl Routed {
    /// The approval this invocation needs, if any: the spec's rule evaluated over the
    /// arguments, who asks, from where, and `facts` the action looked up (an environment's
    /// tier or owner, say).
    pub fn approval(
        &self,
        who: &Principal,
        surface: Surface,
        facts: &BTreeMap<String, String>,
    ) -> Option<ApprovalPolicy> {
        let rule = self.spec.approval.as_ref()?;
        let mut vars: BTreeMap<String, String> = facts.clone();
        vars.extend(self.args.as_map().iter().map(|(k, v)| (k.clone(), v.clone())));
        vars.insert("requester".into(), who.user.clone());
        vars.insert("surface".into(), surface.to_string());
        rule.when.eval(&vars).then(|| rule.policy.clone())
    }

    /// The spec's approval condition in words ("tier is prod"), for the approval prompt;
    /// `None` when the rule applies always.
    pub fn approval_rule_text(&self) -> Option<String> {
        let rule = self.spec.approval.as_ref()?;
        (!matches!(rule.when, super::condition::Condition::Const(true))).then(|| rule.when.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("Nothing to do: type `help` to see the commands you can run.")]
    Empty,
    /// A NUL or another control character: no command takes one, PostgreSQL cannot store a
    /// NUL, and a terminal would act on the others where the command is shown again.
    #[error(
        "The command contains a control character ({found}) at character {at}; no command takes one. Type it again without it."
    )]
    ControlCharacter { found: String, at: usize },
    #[error("Unknown command `{input}`.{}", did_you_mean(.suggestions))]
    Unknown { input: String, suggestions: Vec<String> },
    #[error(
        "You ({user}) may not run `{command}`: it is open to {allowed}. Ask one of them, or an admin to change commands/."
    )]
    Forbidden {
        user: String,
        command: String,
        allowed: String,
    },
    #[error("`{command}` needs different arguments. Usage: {usage}{}{}", keyed_line(*.keyed), examples_line(.examples))]
    Usage {
        command: String,
        usage: String,
        examples: Vec<String>,
        /// Whether the command takes arguments, so the usage says they may go by name.
        keyed: bool,
    },
    #[error("`{command}`: {arg}: {message}. Usage: {usage}{}", keyed_line(*.keyed))]
    Arg {
        command: String,
        arg: String,
        message: String,
        usage: String,
        keyed: bool,
    },
}

impl RouteError {
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::Empty => "empty_command",
            RouteError::ControlCharacter { .. } => "control_character",
            RouteError::Unknown { .. } => "unknown_command",
            RouteError::Forbidden { .. } => "forbidden",
            RouteError::Usage { .. } => "usage",
            RouteError::Arg { .. } => "invalid_argument",
        }
    }
}

fn did_you_mean(s: &[String]) -> String {
    match s {
        [] => " Type `help` to see the commands you can run.".into(),
        [one] => format!(" Did you mean `{one}`?"),
        many => format!(
            " Did you mean one of: {}?",
            many.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Said once wherever a usage is shown: any argument may go by name.
pub const KEYED_NOTE: &str = "any argument may also be given as name=value, in any order";

fn keyed_line(keyed: bool) -> String {
    if keyed {
        format!(" ({KEYED_NOTE})")
    } else {
        String::new()
    }
}

fn examples_line(e: &[String]) -> String {
    match e.first() {
        Some(ex) => format!(" (e.g. `{ex}`)"),
        None => String::new(),
    }
}

pub struct Router {
    specs: Vec<Arc<CommandSpec>>,
    /// Specs by the first word of their name, longest names first, so `env` finds
    /// `env create` before a bare `env` command.
    by_first_word: HashMap<String, Vec<usize>>,
}

/// Strips what chat platforms put in front (`/deckhand`, a leading slash) and collapses spaces.
pub fn normalize(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if let Some(first) = words.first() {
        let bare = first.trim_start_matches('/');
        if bare == "deckhand" {
            words.remove(0);
        } else if bare != *first {
            words[0] = bare;
        }
    }
    words.join(" ")
}

/// Spaces, tabs and line breaks separate words; any other control character is refused.
fn refuse_control_characters(text: &str) -> Result<(), RouteError> {
    match text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !c.is_whitespace())
    {
        Some((i, c)) => Err(RouteError::ControlCharacter {
            found: format!("U+{:04X}", u32::from(c)),
            at: i + 1,
        }),
        None => Ok(()),
    }
}

impl Router {
    pub fn new(specs: Vec<CommandSpec>) -> Self {
        let specs: Vec<Arc<CommandSpec>> = specs.into_iter().map(Arc::new).collect();
        let mut by_first_word: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in specs.iter().enumerate() {
            let first = s.name.split(' ').next().unwrap_or_default().to_owned();
            by_first_word.entry(first).or_default().push(i);
        }
        for v in by_first_word.values_mut() {
            v.sort_by_key(|&i| std::cmp::Reverse(specs[i].name.len()));
        }
        Self { specs, by_first_word }
    }

    pub fn specs(&self) -> &[Arc<CommandSpec>] {
        &self.specs
    }

    pub fn get(&self, name: &str) -> Option<&Arc<CommandSpec>> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// The commands `who` may run, in definition order.
    pub fn visible<'a>(&'a self, who: &'a Principal) -> impl Iterator<Item = &'a Arc<CommandSpec>> + 'a {
        self.specs.iter().filter(move |s| who.is_any(&s.allow))
    }

    pub(super) fn find(&self, text: &str) -> Option<&Arc<CommandSpec>> {
        let first = text.split(' ').next()?;
        self.by_first_word
            .get(first)?
            .iter()
            .map(|&i| &self.specs[i])
            .find(|s| {
                text.strip_prefix(s.name.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            })
    }

    pub fn route(&self, who: &Principal, text: &str) -> Result<Routed, RouteError> {
        refuse_control_characters(text)?;
        let text = normalize(text);
        if text.is_empty() {
            return Err(RouteError::Empty);
        }
        let Some(spec) = self.find(&text) else {
            return Err(RouteError::Unknown {
                suggestions: self.suggest(who, &text),
                input: text,
            });
        };
        // Permission first: there is no point fixing the arguments of a command you cannot run.
        if !who.is_any(&spec.allow) {
            return Err(RouteError::Forbidden {
                user: who.user.clone(),
                command: spec.name.clone(),
                allowed: spec
                    .allow
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let args = bind(spec, &text)?;
        Ok(Routed {
            spec: spec.clone(),
            args,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use regex::Regex;

    use super::*;
    use crate::{commands::spec, configuration::Config};

    /// The shipped specs for environments, apps and the core commands.
    fn router() -> Router {
        let config = Config::defaults().expect("defaults");
        let sources: Vec<(String, String)> = spec::BUILTIN
            .iter()
            .filter(|(f, _)| ["commands/core.yaml", "commands/env.yaml", "commands/app.yaml"].contains(f))
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        let action = Regex::new(r"action: (\S+)").expect("regex");
        let actions: HashMap<String, Vec<String>> = sources
            .iter()
            .flat_map(|(_, t)| action.captures_iter(t).map(|c| c[1].to_owned()).collect::<Vec<_>>())
            .map(|a| (a, vec!["tier".into(), "owner".into(), "mine".into()]))
            .collect();
        let ctx = spec::SpecContext {
            actions: &actions,
            config: &config,
        };
        Router::new(spec::compile_sources(sources, &ctx).expect("shipped specs compile"))
    }

    fn dev() -> Principal {
        Principal {
            user: "ana".into(),
            groups: ["developers".to_owned()].into(),
        }
    }

    #[test]
    fn control_characters_are_refused_but_whitespace_separates_words() {
        let r = router();
        let Err(e) = r.route(&dev(), "env create\u{7} web") else {
            panic!("a BEL was routed");
        };
        assert_eq!(e.code(), "control_character");
        assert!(e.to_string().contains("(U+0007) at character 11"), "{e}");
        let routed = r
            .route(&dev(), "env\tcreate\r\nweb")
            .expect("tabs and line breaks separate words");
        assert_eq!(routed.spec.name, "env create");
    }

    fn args_of(r: &Router, text: &str) -> BTreeMap<String, String> {
        r.route(&dev(), text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .args
            .as_map()
            .clone()
    }

    fn error_of(r: &Router, text: &str) -> String {
        match r.route(&dev(), text) {
            Ok(routed) => panic!("{text}: routed to {:?}", routed.args),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn arguments_go_by_name_in_any_order() {
        let r = router();
        let positional = args_of(&r, "env create checkout stage 2d");
        assert_eq!(positional.get("tier").map(String::as_str), Some("stage"));
        for text in [
            "env create checkout tier=stage ttl=2d",
            "env create checkout ttl=2d tier=stage",
            "env create checkout stage ttl=2d",
            "env create checkout 2d tier=stage",
            "env create ttl=2d name=checkout tier=stage",
            "env create tier=stage checkout 2d",
        ] {
            assert_eq!(args_of(&r, text), positional, "{text}");
        }
        // Keywords in the pattern go with their argument.
        let deploy = args_of(&r, "deploy nginx:1.27 to web as shop replicas=2");
        for text in [
            "deploy replicas=2 nginx:1.27 to web as shop",
            "deploy env=web image=nginx:1.27 app=shop replicas=2",
            "deploy nginx:1.27 app=shop to web replicas=2",
        ] {
            assert_eq!(args_of(&r, text), deploy, "{text}");
        }
        assert_eq!(args_of(&r, "scale shop in web replicas=3")["replicas"], "3");
        assert_eq!(args_of(&r, "logs shop in web lines=5 since=10m")["since"], "10m");
        assert_eq!(args_of(&r, "env list scope=team")["scope"], "team");
    }

    #[test]
    fn named_arguments_are_checked_like_positional_ones() {
        let r = router();
        let cases = [
            (
                "env create checkout colour=blue",
                "colour: is not an argument of this command; it takes name, tier, ttl",
            ),
            (
                "whoami me=1",
                "me: is not an argument of this command, which takes none",
            ),
            ("env create checkout tier=stage tier=prod", "tier: is given twice"),
            ("env create checkout stage tier=prod", "tier: is given twice"),
            ("env create checkout name=other", "name: is given twice"),
            ("env create checkout ttl=forever", "ttl: "),
            ("env create checkout tier=", "tier: needs a value after `tier=`"),
            ("deploy nginx:1.27 to web replicas=0", "replicas: 0 is out of range"),
        ];
        for (text, said) in cases {
            let e = error_of(&r, text);
            assert!(e.contains(said) && e.contains("Usage: "), "{text}: {e}");
        }
    }

    #[test]
    fn listed_values_are_named_when_one_is_wrong() {
        let r = router();
        let cases = [
            (
                "env create checkout gold",
                "tier: 'gold' is not a tier; use one of dev, prod, stage",
            ),
            (
                "env create checkout tier=gold",
                "tier: 'gold' is not a tier; use one of dev, prod, stage",
            ),
            (
                "env create checkout Gold 2d",
                "tier: 'Gold' is not a tier; use one of dev, prod, stage",
            ),
            (
                "env list everyone",
                "scope: 'everyone' is not a valid scope; use one of mine, team, all",
            ),
            (
                "requests scope=some",
                "scope: 'some' is not a valid scope; use one of mine, pending, all",
            ),
            (
                "requests old",
                "scope: 'old' is not a valid scope; use one of mine, pending, all",
            ),
        ];
        for (text, said) in cases {
            let e = error_of(&r, text);
            assert!(e.contains(said), "{text}: {e}");
        }
    }

    #[test]
    fn usage_and_help_mention_names_once() {
        let r = router();
        let e = error_of(&r, "env create");
        assert_eq!(e.matches("name=value").count(), 1, "{e}");
        assert!(e.contains("Usage: env create <name> [tier[@cluster]] [ttl]"), "{e}");
        let help = r.help_for(&dev(), "env create").expect("help");
        assert_eq!(help.matches("name=value").count(), 1, "{help}");
        let plain = error_of(&r, "whoami now");
        assert!(!plain.contains("name=value"), "{plain}");
    }
}
