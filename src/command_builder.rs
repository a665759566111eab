//! The command builder's model, shared by the Slack and Discord forms: which commands a person
//! may pick, one field per argument of the picked command (typed by its spec: enum values as
//! choices, optional or not), and the filled form back into the command text a person would
//! have typed. The text then goes through `App::submit` like typed text, so the builder adds
//! no second path for authorization, approval or replies.

use std::collections::BTreeMap;

use crate::{
    commands::{
        CommandSpec, Router,
        args::parse_value,
        spec::{ArgSpec, ArgType},
    },
    discord::command_text,
    identity::Principal,
};

/// One argument of the picked command, as a form field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The spec's help for the argument, else what may be typed.
    pub hint: String,
    /// A field left empty is fine: the argument is optional or has a default.
    pub optional: bool,
    /// The values a person may pick (enum and tier arguments); empty for free input.
    pub choices: Vec<String>,
    /// Filled in when the form opens: the argument's default.
    pub default: Option<String>,
}

impl Field {
    /// The choices when they fit a select holding at most `max` options of at most
    /// `max_len` characters; `None` means the field must be free text (with the values in
    /// its hint), so a spec with more values than a select holds still works.
    pub fn select(&self, max: usize, max_len: usize) -> Option<&[String]> {
        let fits = !self.choices.is_empty()
            && self.choices.len() <= max
            && self.choices.iter().all(|c| c.chars().count() <= max_len);
        fits.then_some(self.choices.as_slice())
    }
}

fn field(arg: &ArgSpec) -> Field {
    let choices = match &arg.kind {
        ArgType::Enum(v) | ArgType::Tier(v) => v.clone(),
        _ => Vec::new(),
    };
    let allowed = arg.kind.allowed();
    let hint = if arg.help.is_empty() {
        allowed
    } else {
        format!("{}: {allowed}", arg.help)
    };
    Field {
        name: arg.name.clone(),
        hint,
        optional: arg.optional || arg.default.is_some(),
        choices,
        default: arg.default.clone(),
    }
}

/// The form fields of `spec`, in the order its pattern has them.
pub fn fields(spec: &CommandSpec) -> Vec<Field> {
    spec.args.iter().map(field).collect()
}

/// The commands `who` may run, as (name, help), in definition order.
pub fn commands(router: &Router, who: &Principal) -> Vec<(String, String)> {
    router.visible(who).map(|s| (s.name.clone(), s.help.clone())).collect()
}

/// Why a filled form is not a command yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Per field: (argument name, what is wrong).
    #[error("{}", .0.iter().map(|(f, e)| format!("{f}: {e}")).collect::<Vec<_>>().join("; "))]
    Fields(Vec<(String, String)>),
    /// The values do not fit the command's pattern together.
    #[error("{0}")]
    Command(String),
}

/// The command text for `values` (argument name -> what was entered), checked field by field
/// with the same rules as typed arguments. Empty optional fields are left out.
pub fn text(spec: &CommandSpec, values: &BTreeMap<String, String>) -> Result<String, BuildError> {
    let mut given = BTreeMap::new();
    let mut errors = Vec::new();
    for arg in &spec.args {
        let raw = values.get(&arg.name).map(|v| v.trim()).unwrap_or_default();
        if raw.is_empty() {
            if !(arg.optional || arg.default.is_some()) {
                errors.push((arg.name.clone(), "this one is required".to_owned()));
            }
            continue;
        }
        match parse_value(&arg.name, &arg.kind, raw) {
            Ok(v) => {
                given.insert(arg.name.clone(), v);
            }
            Err(e) => errors.push((arg.name.clone(), e)),
        }
    }
    if !errors.is_empty() {
        return Err(BuildError::Fields(errors));
    }
    command_text::render(spec, &given).map_err(|e| BuildError::Command(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use crate::{commands::spec, configuration::Config};

    /// The shipped environment specs.
    fn router() -> Router {
        let config = Config::defaults().expect("defaults");
        let sources: Vec<(String, String)> = spec::BUILTIN
            .iter()
            .filter(|(f, _)| *f == "commands/env.yaml")
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        let facts = vec!["tier".to_owned(), "owner".into(), "mine".into()];
        let actions: HashMap<String, Vec<String>> = ["env.create", "env.list", "env.extend", "env.delete"]
            .iter()
            .map(|a| (a.to_string(), facts.clone()))
            .collect();
        let ctx = spec::SpecContext {
            actions: &actions,
            config: &config,
        };
        Router::new(spec::compile_sources(sources, &ctx).expect("shipped specs compile"))
    }

    #[test]
    fn a_filled_form_is_the_text_a_person_would_type() {
        let r = router();
        let spec = r.get("env create").expect("env create");
        let names: Vec<String> = fields(spec).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["name", "tier", "ttl"]);
        let tier = &fields(spec)[1];
        assert!(tier.optional);
        assert_eq!(
            tier.select(100, 75),
            Some(&["dev".to_owned(), "prod".into(), "stage".into()][..])
        );
        assert_eq!(tier.select(2, 75), None, "more values than a select holds: free text");
        let form = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(
            text(spec, &form(&[("name", "preview-1"), ("tier", "prod"), ("ttl", "2d")])),
            Ok("env create preview-1 prod 2d".into())
        );
        assert_eq!(
            text(spec, &form(&[("name", "p"), ("tier", " ")])),
            Ok("env create p".into())
        );
        let Err(BuildError::Fields(errors)) = text(spec, &form(&[("tier", "gold"), ("ttl", "soon")])) else {
            panic!("bad fields accepted");
        };
        let named: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(named, ["name", "tier", "ttl"]);
        assert!(errors[1].1.contains("dev, prod, stage"), "{errors:?}");
    }
}
