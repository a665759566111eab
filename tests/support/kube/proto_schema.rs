//! The protobuf schema of the built-in kinds, read from Kubernetes' own `generated.proto` files
//! (vendored in `proto/`), so field numbers and types come from upstream instead of being
//! written out by hand. The k8s-pb crate has the same messages as prost structs, but without
//! serde or a descriptor set: turning them into the JSON this server stores would take one
//! hand-written conversion per message (hundreds, for a Pod). A schema read at run time lets
//! protobuf.rs convert every message generically.
//!
//! `proto/` holds the files of kubernetes/api (core, apps, batch, autoscaling, networking and
//! rbac v1: every built-in group the fake serves) and kubernetes/apimachinery (meta/v1, runtime,
//! intstr, resource) at tag v0.32.4, the Kubernetes version the fake reports, as
//! `proto/vendor.sh` makes them: comment lines dropped, plus `omitempty.txt` from the Go
//! types' struct tags (which fields' zero values JSON leaves out). The files use a small proto2
//! subset: one level of `message`, and `optional`/`repeated`/`map<K, V>` fields of scalars or messages; the parser
//! reads exactly that and refuses anything else, so an updated file with a new construct fails
//! loudly instead of being misread.

use std::collections::HashMap;
use std::sync::OnceLock;

const FILES: &[&str] = &[
    include_str!("proto/apimachinery-runtime.proto"),
    include_str!("proto/apimachinery-util-intstr.proto"),
    include_str!("proto/apimachinery-api-resource.proto"),
    include_str!("proto/apimachinery-apis-meta-v1.proto"),
    include_str!("proto/api-core-v1.proto"),
    include_str!("proto/api-apps-v1.proto"),
    include_str!("proto/api-batch-v1.proto"),
    include_str!("proto/api-autoscaling-v1.proto"),
    include_str!("proto/api-networking-v1.proto"),
    include_str!("proto/api-rbac-v1.proto"),
    include_str!("proto/api-authorization-v1.proto"),
];

/// `package.Message.field` of each Go non-pointer field tagged `omitempty` (see vendor.sh).
const OMITEMPTY: &str = include_str!("proto/omitempty.txt");

pub const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    /// A message, by its fully qualified name (no leading dot).
    Message(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    Optional,
    Repeated,
    /// `map<string, V>`: on the wire, repeated entries {1: key, 2: value}.
    Map,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub number: u32,
    pub label: Label,
    pub ty: Ty,
    /// A Go non-pointer `omitempty` field: written to protobuf even when zero, but a zero
    /// (empty string, 0, false) means unset and is left out of JSON. Other fields keep a zero
    /// (a pointer's explicit `replicas: 0` or `automountServiceAccountToken: false`).
    pub omit_zero: bool,
}

#[derive(Debug, Default)]
pub struct Message {
    /// Ordered by field number (the order Go's generated code writes them in).
    pub fields: Vec<Field>,
}

impl Message {
    pub fn field(&self, number: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }
}

pub struct Schema {
    pub messages: HashMap<String, Message>,
    /// (apiVersion, kind) -> message, for the top-level kinds.
    kinds: HashMap<(String, String), String>,
}

impl Schema {
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| parse(FILES).unwrap_or_else(|e| panic!("vendored generated.proto: {e}")))
    }

    /// The message of a kind served in protobuf (built-in kinds; never a custom resource).
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .map(String::as_str)
    }
}

/// The apiVersion a vendored package's messages are served as.
fn api_version_of(package: &str) -> Option<&'static str> {
    Some(match package {
        "k8s.io.api.core.v1" => "v1",
        "k8s.io.api.apps.v1" => "apps/v1",
        "k8s.io.api.batch.v1" => "batch/v1",
        "k8s.io.api.autoscaling.v1" => "autoscaling/v1",
        "k8s.io.api.networking.v1" => "networking.k8s.io/v1",
        "k8s.io.api.rbac.v1" => "rbac.authorization.k8s.io/v1",
        "k8s.io.api.authorization.v1" => "authorization.k8s.io/v1",
        META => "meta.k8s.io/v1",
        _ => return None,
    })
}

fn scalar(t: &str) -> Option<Ty> {
    Some(match t {
        "string" => Ty::String,
        "bytes" => Ty::Bytes,
        "bool" => Ty::Bool,
        "int32" => Ty::Int32,
        "int64" => Ty::Int64,
        _ => return None,
    })
}

fn parse(files: &[&str]) -> Result<Schema, String> {
    let mut messages = HashMap::new();
    let mut kinds = HashMap::new();
    let omitempty: std::collections::HashSet<&str> = OMITEMPTY.lines().map(str::trim).collect();
    for text in files {
        let mut package = String::new();
        let mut current: Option<(String, Message)> = None;
        let mut in_header = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let at = |msg: &str| format!("line {}: {msg}: {line}", i + 1);
            if line.starts_with("/*") {
                in_header = true;
            }
            if in_header {
                in_header = !line.ends_with("*/");
                continue;
            }
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            if let Some(p) = line.strip_prefix("package ") {
                package = p.trim_end_matches(';').to_string();
                continue;
            }
            if line.starts_with("syntax ") || line.starts_with("import ") || line.starts_with("option ") {
                continue;
            }
            if let Some(name) = line.strip_prefix("message ").and_then(|l| l.strip_suffix(" {")) {
                if current.is_some() {
                    return Err(at("nested message"));
                }
                current = Some((name.to_string(), Message::default()));
                continue;
            }
            if line == "}" {
                let (name, mut msg) = current.take().ok_or_else(|| at("unbalanced }"))?;
                msg.fields.sort_by_key(|f| f.number);
                for f in &mut msg.fields {
                    f.omit_zero = omitempty.contains(format!("{package}.{name}.{}", f.name).as_str());
                }
                if let Some(v) = api_version_of(&package) {
                    kinds.insert((v.to_string(), name.clone()), format!("{package}.{name}"));
                }
                messages.insert(format!("{package}.{name}"), msg);
                continue;
            }
            let (_, msg) = current.as_mut().ok_or_else(|| at("field outside a message"))?;
            msg.fields
                .push(parse_field(line, &package).ok_or_else(|| at("unsupported field"))?);
        }
        if current.is_some() {
            return Err("unterminated message".into());
        }
    }
    // The meta/v1 kinds every group serves under its own version; Status says "v1".
    for k in ["Status", "DeleteOptions"] {
        kinds.insert(("v1".to_string(), k.to_string()), format!("{META}.{k}"));
    }
    let schema = Schema { messages, kinds };
    for (name, m) in &schema.messages {
        for f in &m.fields {
            if let Ty::Message(t) = &f.ty
                && !schema.messages.contains_key(t)
            {
                return Err(format!("{name}.{}: unknown type {t}", f.name));
            }
        }
    }
    Ok(schema)
}

/// `optional T name = N;`, `repeated T name = N;` or `map<string, T> name = N;`.
fn parse_field(line: &str, package: &str) -> Option<Field> {
    let line = line.strip_suffix(';')?;
    let (decl, number) = line.rsplit_once(" = ")?;
    let number: u32 = number.trim().parse().ok()?;
    let (label, ty, name) = if let Some(rest) = decl.strip_prefix("map<") {
        let (kv, name) = rest.split_once("> ")?;
        let (k, v) = kv.split_once(',')?;
        if k.trim() != "string" {
            return None;
        }
        (Label::Map, v.trim(), name)
    } else {
        let mut parts = decl.split_whitespace();
        let label = match parts.next()? {
            "optional" => Label::Optional,
            "repeated" => Label::Repeated,
            _ => return None,
        };
        let ty = parts.next()?;
        let name = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        (label, ty, name)
    };
    let ty = match scalar(ty) {
        Some(t) => t,
        None if ty.starts_with('.') => Ty::Message(ty[1..].to_string()),
        None if ty.chars().all(|c| c.is_ascii_alphanumeric()) => Ty::Message(format!("{package}.{ty}")),
        None => return None,
    };
    Some(Field {
        name: name.trim().to_string(),
        number,
        label,
        ty,
        omit_zero: false,
    })
}
