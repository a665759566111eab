//! A service class file as ops write it (services/*.yaml), and everything about it that can
//! be checked without a cluster, down to rendering every template with the parameters'
//! defaults: a class with any problem is refused at start-up with each problem named by its
//! field, not when someone asks for a service.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use super::{
    class::{Binding, ClassProblem, Ready, ServiceClass},
    params::{ParamSpec, ParamType},
    render::Renderer,
    sample_render::check_renders,
};
use crate::domain::Name;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClass {
    name: String,
    description: String,
    #[serde(default)]
    cost: bool,
    /// In the order written, which is the order prompts and lists show them in.
    #[serde(default)]
    parameters: yaml_serde::Mapping,
    #[serde(default)]
    resources: Vec<RawResource>,
    template: String,
    ready: RawReady,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    connection: Option<RawConnection>,
    #[serde(default)]
    bind: RawBind,
    #[serde(default)]
    identity: Option<RawIdentity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    help: String,
    #[serde(default)]
    default: Option<yaml_serde::Value>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    max: Option<i64>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    size: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    plural: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReady {
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    secret: String,
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBind {
    #[serde(default, rename = "envFrom")]
    env_from: bool,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    values: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    annotations: BTreeMap<String, String>,
}

fn env_var_ok(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn annotation_key_ok(s: &str) -> bool {
    let (prefix, name) = s.rsplit_once('/').unwrap_or(("", s));
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let prefix_ok = prefix.len() <= 253
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
    name_ok && prefix_ok
}

/// The problems found so far, each under its field.
#[derive(Default)]
struct Problems(Vec<ClassProblem>);

impl Problems {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(ClassProblem {
            field: field.to_owned(),
            message: message.into(),
        });
    }
}

impl RawClass {
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Checks everything that can be checked without a cluster, including rendering every
    /// template with the parameters' defaults.
    pub(super) fn compile(self, file: &str, renderer: &Renderer) -> Result<ServiceClass, Vec<ClassProblem>> {
        let mut problems = Problems::default();
        let name = Name::parse(&self.name)
            .map_err(|e| problems.add("name", e.to_string()))
            .ok();
        if self.description.trim().is_empty() {
            problems.add("description", "must say in a line what the class provisions");
        }
        let params = self
            .parameters
            .iter()
            .filter_map(|(key, value)| param(key.as_str().unwrap_or_default(), value, &mut problems))
            .collect();
        let plurals = plurals(&self.resources, &mut problems);
        let ready = self.ready.check(&mut problems);
        let secret = self.connection.as_ref().map(|c| c.check(&mut problems));
        self.bind.check(secret.as_ref(), &mut problems);
        let identity = self.identity.map(|i| i.annotations).unwrap_or_default();
        check_identity(&identity, &mut problems);
        let (Some(name), Some(ready), true) = (name, ready, problems.0.is_empty()) else {
            return Err(problems.0);
        };
        let mut class = ServiceClass {
            name,
            description: self.description.trim().to_owned(),
            cost: self.cost,
            params,
            plurals,
            kinds: Vec::new(),
            template: self.template,
            ready,
            endpoint: self.endpoint,
            secret,
            binding: Binding {
                env_from: self.bind.env_from,
                env: self.bind.env,
                values: self.bind.values,
            },
            identity,
            file: file.to_owned(),
        };
        class.kinds = check_renders(&class, renderer)?;
        Ok(class)
    }
}

/// One parameter, or `None` with its problem noted.
fn param(pname: &str, value: &yaml_serde::Value, problems: &mut Problems) -> Option<ParamSpec> {
    let field = format!("parameters.{pname}");
    let p: RawParam = yaml_serde::from_value(value.clone())
        .map_err(|e| problems.add(&field, e.to_string()))
        .ok()?;
    if !env_var_ok(pname) {
        problems.add(&field, "parameter names are letters, digits and '_'");
        return None;
    }
    let kind = param_type(&p, &field, problems)?;
    let default = match &p.default {
        None => None,
        Some(v) => {
            let raw = match v {
                yaml_serde::Value::String(s) => s.clone(),
                yaml_serde::Value::Bool(b) => b.to_string(),
                yaml_serde::Value::Number(n) => n.to_string(),
                _ => String::from("(not a scalar)"),
            };
            match kind.parse(&raw) {
                Ok(v) => Some(v),
                Err(allowed) => {
                    problems.add(
                        &format!("{field}.default"),
                        format!("'{raw}' is not allowed; use {allowed}"),
                    );
                    return None;
                }
            }
        }
    };
    Some(ParamSpec {
        name: pname.to_owned(),
        kind,
        help: p.help,
        default,
        size: p.size,
    })
}

fn param_type(p: &RawParam, field: &str, problems: &mut Problems) -> Option<ParamType> {
    let kind = match p.kind.as_str() {
        "string" => match p.pattern.as_deref().map(|r| Regex::new(&format!("^(?:{r})$"))) {
            None => ParamType::String { pattern: None },
            Some(Ok(re)) => ParamType::String { pattern: Some(re) },
            Some(Err(e)) => {
                problems.add(&format!("{field}.pattern"), format!("is not a valid regex: {e}"));
                return None;
            }
        },
        "int" => match (p.min, p.max) {
            (Some(min), Some(max)) if min <= max => ParamType::Int { min, max },
            (Some(_), Some(_)) => {
                problems.add(&format!("{field}.min"), "must not be greater than max");
                return None;
            }
            _ => {
                problems.add(field, "type int needs both min and max");
                return None;
            }
        },
        "enum" if !p.values.is_empty() => {
            let unsafe_value = p
                .values
                .iter()
                .find(|v| ParamType::String { pattern: None }.parse(v).is_err());
            if let Some(v) = unsafe_value {
                problems.add(
                    &format!("{field}.values"),
                    format!("'{v}' is not a safe value (letters, digits, '.', '_' and '-')"),
                );
                return None;
            }
            ParamType::Enum(p.values.clone())
        }
        "enum" => {
            problems.add(&format!("{field}.values"), "type enum needs a list of values");
            return None;
        }
        "bool" => ParamType::Bool,
        other => {
            problems.add(
                &format!("{field}.type"),
                format!("unknown type '{other}' (use string, int, enum or bool)"),
            );
            return None;
        }
    };
    Some(kind)
}

/// (apiVersion, kind) -> plural, from `resources`.
fn plurals(resources: &[RawResource], problems: &mut Problems) -> BTreeMap<(String, String), String> {
    let mut plurals = BTreeMap::new();
    for (i, r) in resources.iter().enumerate() {
        if Name::parse(&r.plural).is_err() {
            problems.add(
                &format!("resources[{i}].plural"),
                format!("'{}' is not a resource plural (lowercase, e.g. buckets)", r.plural),
            );
        }
        plurals.insert((r.api_version.clone(), r.kind.clone()), r.plural.clone());
    }
    plurals
}

impl RawReady {
    fn check(&self, problems: &mut Problems) -> Option<Ready> {
        match (&self.condition, &self.path, &self.value) {
            (Some(c), None, None) if !c.is_empty() => Some(Ready::Condition(c.clone())),
            (None, Some(p), Some(v)) if !p.is_empty() => Some(Ready::Path {
                path: p.clone(),
                value: v.clone(),
            }),
            _ => {
                problems.add(
                    "ready",
                    "give either `condition: TYPE` (status.conditions) or `path` and `value`",
                );
                None
            }
        }
    }
}

impl RawConnection {
    /// The Secret's name template and its keys.
    fn check(&self, problems: &mut Problems) -> (String, Vec<String>) {
        for k in &self.keys {
            let ok = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                problems.add("connection.keys", format!("'{k}' is not a Secret key"));
            }
        }
        (self.secret.clone(), self.keys.clone())
    }
}

impl RawBind {
    /// The variables an app gets: names, and keys only of the connection Secret it has.
    fn check(&self, secret: Option<&(String, Vec<String>)>, problems: &mut Problems) {
        for (var, key) in &self.env {
            let field = format!("bind.env.{var}");
            if !env_var_ok(var) {
                problems.add(&field, "is not an environment variable name");
            }
            match secret {
                None => problems.add(&field, "reads the connection Secret, but the class has no `connection`"),
                Some((_, keys)) if !keys.contains(key) => problems.add(
                    &field,
                    format!("'{key}' is not one of connection.keys ({})", keys.join(", ")),
                ),
                _ => {}
            }
        }
        if self.env_from && secret.is_none() {
            problems.add("bind.envFrom", "needs a `connection` Secret to take the variables from");
        }
        for var in self.values.keys() {
            if !env_var_ok(var) || self.env.contains_key(var) {
                problems.add(
                    &format!("bind.values.{var}"),
                    "is not an environment variable name, or is also under bind.env",
                );
            }
        }
    }
}

fn check_identity(identity: &BTreeMap<String, String>, problems: &mut Problems) {
    for key in identity.keys() {
        if !annotation_key_ok(key) {
            problems.add(
                &format!("identity.annotations.{key}"),
                "is not an annotation key (e.g. eks.amazonaws.com/role-arn)",
            );
        }
    }
}
