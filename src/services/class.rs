//! A service class in its checked form, which renders the Kubernetes objects for one service
//! and says how to tell it is ready, where its connection details land and how apps bind to
//! it. The YAML ops write, and the checks that turn it into this, are in class_file.rs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    params::{ParamSpec, Params},
    render::{Renderer, TemplateError},
};
use crate::domain::Name;

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

impl ServiceClass {
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
