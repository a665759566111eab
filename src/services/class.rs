//! A service class: the YAML ops write (see services/*.yaml) and its checked form, which
//! renders the Kubernetes objects for one service and says how to tell it is ready, where its
//! connection details land and how apps bind to it.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::{
    params::{ParamSpec, ParamType, ParamValue, Params},
    render::{Renderer, TemplateError},
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

/// When the primary object counts as provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// `status.conditions[type=NAME].status == "True"`.
    Condition(String),
    /// The string at a dotted path in the object equals a value.
    Path { path: String, value: String },
}

impl Ready {
    pub fn holds(&self, obj: &Value) -> bool {
        match self {
            Ready::Condition(kind) => conditions(obj)
                .iter()
                .any(|c| c["type"].as_str() == Some(kind) && c["status"].as_str() == Some("True")),
            Ready::Path { path, value } => at_path(obj, path).is_some_and(|v| match v {
                Value::String(s) => s == value,
                // Numbers and booleans compare by their JSON text (`status.ready: true`).
                other => value.parse::<Value>().is_ok_and(|v| v == *other),
            }),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Ready::Condition(kind) => format!("{kind}=True"),
            Ready::Path { path, value } => format!("{path}={value}"),
        }
    }
}

/// `type=status (reason)` for each condition, the way progress lines show them.
pub fn conditions_line(obj: &Value) -> String {
    conditions(obj)
        .iter()
        .map(|c| {
            let reason = c["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default();
            format!(
                "{}={}{reason}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn conditions(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn at_path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, k| v.get(k))
}

/// How an app gets the connection details.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    /// The whole connection Secret as environment variables.
    pub env_from: bool,
    /// Environment variable -> key of the connection Secret.
    pub env: BTreeMap<String, String>,
    /// Environment variable -> template of a plain (non-secret) value, e.g. a bucket name.
    pub values: BTreeMap<String, String>,
}

/// A checked class.
#[derive(Debug, Clone)]
pub struct ServiceClass {
    pub name: Name,
    pub description: String,
    pub cost: bool,
    pub params: Vec<ParamSpec>,
    /// (apiVersion, kind) -> plural, so deckhand needs no discovery for these kinds.
    pub plurals: BTreeMap<(String, String), String>,
    /// (apiVersion, kind) of each object the template renders, in order; the first is the
    /// primary object, whose readiness is the service's.
    pub kinds: Vec<(String, String)>,
    pub template: String,
    pub ready: Ready,
    pub endpoint: Option<String>,
    /// Template of the connection Secret's name, and the keys it holds (names only).
    pub secret: Option<(String, Vec<String>)>,
    pub binding: Binding,
    /// ServiceAccount annotation -> template (e.g. eks.amazonaws.com/role-arn).
    pub identity: BTreeMap<String, String>,
    pub file: String,
}

/// One problem in a class file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassProblem {
    pub field: String,
    pub message: String,
}

/// What a template sees: the service, its environment and its checked parameters. For
/// `bind`, also the app; for `endpoint`, also the ready object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Context {
    pub name: String,
    pub env: String,
    pub class: String,
    pub params: Params,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
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

impl RawClass {
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Checks everything that can be checked without a cluster, including rendering every
    /// template with the parameters' defaults.
    pub(super) fn compile(self, file: &str, renderer: &Renderer) -> Result<ServiceClass, Vec<ClassProblem>> {
        let mut problems = Vec::new();
        let mut err = |field: &str, message: String| {
            problems.push(ClassProblem {
                field: field.to_owned(),
                message,
            })
        };
        let name = match Name::parse(&self.name) {
            Ok(n) => Some(n),
            Err(e) => {
                err("name", e.to_string());
                None
            }
        };
        if self.description.trim().is_empty() {
            err("description", "must say in a line what the class provisions".into());
        }
        let mut params = Vec::new();
        for (key, value) in self.parameters.iter() {
            let pname = key.as_str().unwrap_or_default();
            let field = format!("parameters.{pname}");
            let p: RawParam = match yaml_serde::from_value(value.clone()) {
                Ok(p) => p,
                Err(e) => {
                    err(&field, e.to_string());
                    continue;
                }
            };
            if !env_var_ok(pname) {
                err(&field, "parameter names are letters, digits and '_'".into());
                continue;
            }
            let kind = match p.kind.as_str() {
                "string" => match p.pattern.as_deref().map(|r| Regex::new(&format!("^(?:{r})$"))) {
                    None => ParamType::String { pattern: None },
                    Some(Ok(re)) => ParamType::String { pattern: Some(re) },
                    Some(Err(e)) => {
                        err(&format!("{field}.pattern"), format!("is not a valid regex: {e}"));
                        continue;
                    }
                },
                "int" => match (p.min, p.max) {
                    (Some(min), Some(max)) if min <= max => ParamType::Int { min, max },
                    (Some(_), Some(_)) => {
                        err(&format!("{field}.min"), "must not be greater than max".into());
                        continue;
                    }
                    _ => {
                        err(&field, "type int needs both min and max".into());
                        continue;
                    }
                },
                "enum" if !p.values.is_empty() => {
                    let bad = p
                        .values
                        .iter()
                        .find(|v| ParamType::String { pattern: None }.parse(v).is_err());
                    if let Some(v) = bad {
                        err(
                            &format!("{field}.values"),
                            format!("'{v}' is not a safe value (letters, digits, '.', '_' and '-')"),
                        );
                        continue;
                    }
                    ParamType::Enum(p.values.clone())
                }
                "enum" => {
                    err(&format!("{field}.values"), "type enum needs a list of values".into());
                    continue;
                }
                "bool" => ParamType::Bool,
                other => {
                    err(
                        &format!("{field}.type"),
                        format!("unknown type '{other}' (use string, int, enum or bool)"),
                    );
                    continue;
                }
            };
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
                            err(
                                &format!("{field}.default"),
                                format!("'{raw}' is not allowed; use {allowed}"),
                            );
                            continue;
                        }
                    }
                }
            };
            params.push(ParamSpec {
                name: pname.to_owned(),
                kind,
                help: p.help.clone(),
                default,
                size: p.size,
            });
        }
        let mut plurals = BTreeMap::new();
        for (i, r) in self.resources.iter().enumerate() {
            if Name::parse(&r.plural).is_err() {
                err(
                    &format!("resources[{i}].plural"),
                    format!("'{}' is not a resource plural (lowercase, e.g. buckets)", r.plural),
                );
            }
            plurals.insert((r.api_version.clone(), r.kind.clone()), r.plural.clone());
        }
        let ready = match (&self.ready.condition, &self.ready.path, &self.ready.value) {
            (Some(c), None, None) if !c.is_empty() => Some(Ready::Condition(c.clone())),
            (None, Some(p), Some(v)) if !p.is_empty() => Some(Ready::Path {
                path: p.clone(),
                value: v.clone(),
            }),
            _ => {
                err(
                    "ready",
                    "give either `condition: TYPE` (status.conditions) or `path` and `value`".into(),
                );
                None
            }
        };
        let secret = match &self.connection {
            None => None,
            Some(c) => {
                for k in &c.keys {
                    let ok = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                    if !ok {
                        err("connection.keys", format!("'{k}' is not a Secret key"));
                    }
                }
                Some((c.secret.clone(), c.keys.clone()))
            }
        };
        for (var, key) in &self.bind.env {
            if !env_var_ok(var) {
                err(&format!("bind.env.{var}"), "is not an environment variable name".into());
            }
            match &secret {
                None => err(
                    &format!("bind.env.{var}"),
                    "reads the connection Secret, but the class has no `connection`".into(),
                ),
                Some((_, keys)) if !keys.contains(key) => err(
                    &format!("bind.env.{var}"),
                    format!("'{key}' is not one of connection.keys ({})", keys.join(", ")),
                ),
                _ => {}
            }
        }
        if self.bind.env_from && secret.is_none() {
            err(
                "bind.envFrom",
                "needs a `connection` Secret to take the variables from".into(),
            );
        }
        for var in self.bind.values.keys() {
            if !env_var_ok(var) || self.bind.env.contains_key(var) {
                err(
                    &format!("bind.values.{var}"),
                    "is not an environment variable name, or is also under bind.env".into(),
                );
            }
        }
        let identity = self.identity.map(|i| i.annotations).unwrap_or_default();
        for key in identity.keys() {
            if !annotation_key_ok(key) {
                err(
                    &format!("identity.annotations.{key}"),
                    "is not an annotation key (e.g. eks.amazonaws.com/role-arn)".into(),
                );
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let (Some(name), Some(ready)) = (name, ready) else {
            return Err(problems);
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
        class.kinds = class.check_renders(renderer)?;
        Ok(class)
    }
}

impl ServiceClass {
    /// Every template rendered with the defaults (a required parameter without one gets a
    /// valid sample value), so a class that cannot render is refused at start-up, not when
    /// someone asks for a service.
    fn check_renders(&self, renderer: &Renderer) -> Result<Vec<(String, String)>, Vec<ClassProblem>> {
        let mut problems = Vec::new();
        let mut kinds = Vec::new();
        let sample = Params(
            self.params
                .iter()
                .map(|p| {
                    let v = p.default.clone().unwrap_or_else(|| match &p.kind {
                        ParamType::Int { min, .. } => ParamValue::Int(*min),
                        ParamType::Enum(v) => ParamValue::Str(v[0].clone()),
                        ParamType::Bool => ParamValue::Bool(false),
                        ParamType::String { .. } => ParamValue::Str("example".into()),
                    });
                    (p.name.clone(), v)
                })
                .collect(),
        );
        let ctx = Context {
            name: "example".into(),
            env: "example-env".into(),
            class: self.name.to_string(),
            params: sample,
            app: Some("example-app".into()),
        };
        let mut problem = |field: &str, e: TemplateError| {
            problems.push(ClassProblem {
                field: field.to_owned(),
                message: e.to_string(),
            })
        };
        match self.render_objects(renderer, &ctx) {
            Ok(objects) => {
                for (i, o) in objects.iter().enumerate() {
                    let key = (
                        o["apiVersion"].as_str().unwrap_or_default().to_owned(),
                        o["kind"].as_str().unwrap_or_default().to_owned(),
                    );
                    if !kinds.contains(&key) {
                        kinds.push(key.clone());
                    }
                    if !self.plurals.is_empty() && !self.plurals.contains_key(&key) {
                        problem(
                            "resources",
                            TemplateError::Shape(format!(
                                "object {} renders {} {}, which has no entry under resources",
                                i + 1,
                                key.0,
                                key.1
                            )),
                        );
                    }
                }
            }
            Err(e) => problem("template", e),
        }
        if let Some((secret, _)) = &self.secret
            && let Err(e) = renderer.name(secret, &ctx)
        {
            problem("connection.secret", e);
        }
        for (var, t) in &self.binding.values {
            if let Err(e) = renderer.value(t, &ctx) {
                problem(&format!("bind.values.{var}"), e);
            }
        }
        for (key, t) in &self.identity {
            if let Err(e) = renderer.value(t, &ctx) {
                problem(&format!("identity.annotations.{key}"), e);
            }
        }
        if let Some(t) = &self.endpoint
            && let Err(e) = renderer.check_syntax(t)
        {
            problem("endpoint", e);
        }
        if problems.is_empty() { Ok(kinds) } else { Err(problems) }
    }

    /// The objects for one service, exactly as the template gives them (labels and the
    /// namespace are added by the caller).
    pub fn render_objects(&self, renderer: &Renderer, ctx: &Context) -> Result<Vec<Value>, TemplateError> {
        renderer.objects(&self.template, ctx)
    }

    /// The name of the connection Secret of this service, if the class has one.
    pub fn secret_name(&self, renderer: &Renderer, ctx: &Context) -> Result<Option<String>, TemplateError> {
        self.secret.as_ref().map(|(t, _)| renderer.name(t, ctx)).transpose()
    }

    pub fn plural(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.plurals
            .get(&(api_version.to_owned(), kind.to_owned()))
            .map(String::as_str)
    }

    pub fn secret_keys(&self) -> &[String] {
        self.secret.as_ref().map_or(&[], |(_, k)| k.as_slice())
    }

    /// Where to reach it, from the ready object; None when the class says nothing or the
    /// status does not have the fields yet.
    pub fn endpoint(&self, renderer: &Renderer, obj: &Value) -> Option<String> {
        let t = self.endpoint.as_ref()?;
        renderer.value(t, obj).ok().filter(|s| !s.trim().is_empty())
    }

    /// One line per parameter: what it takes, its default and its help.
    pub fn describe_params(&self) -> Vec<String> {
        self.params
            .iter()
            .map(|p| {
                let default = p.default.as_ref().map(|d| format!(", default {d}")).unwrap_or_default();
                let help = if p.help.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.help)
                };
                format!("{}: {}{default}{help}", p.name, p.kind.allowed())
            })
            .collect()
    }
}
