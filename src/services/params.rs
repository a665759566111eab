//! A class's parameter schema and the values a request gives it. Only what the schema
//! allows reaches a template: typed, bounded, and in a character set that cannot break out of
//! the YAML it is rendered into.

use std::{collections::BTreeMap, fmt};

use regex::Regex;
use serde::Serialize;

/// Characters a string parameter may hold whatever its pattern says: enough for names,
/// versions and regions, nothing that means something in YAML.
const SAFE_CHARS: &str = "letters, digits, '.', '_' and '-'";
const STRING_MAX: usize = 63;

#[derive(Debug, Clone)]
pub enum ParamType {
    String { pattern: Option<Regex> },
    Int { min: i64, max: i64 },
    Enum(Vec<String>),
    Bool,
}

#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamType,
    pub help: String,
    pub default: Option<ParamValue>,
    /// A size parameter: shown in the approval prompt and in `service list`.
    pub size: bool,
}

/// A checked parameter value; serialises as its natural JSON type for templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Str(s) => f.write_str(s),
        }
    }
}

/// Why a parameter was refused: which one, and what it may be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter `{param}`: '{value}' is not allowed; use {allowed}")]
    Invalid {
        param: String,
        value: String,
        allowed: String,
    },
    #[error("unknown parameter `{param}`; this class takes {known}")]
    Unknown { param: String, known: String },
    #[error("parameter `{0}` is given twice")]
    Repeated(String),
    #[error("parameter `{0}` is required")]
    Missing(String),
    #[error("'{0}' is not a parameter; write them as key=value, e.g. size=small")]
    Syntax(String),
}

impl ParamType {
    /// What may be given, for error messages and help.
    pub fn allowed(&self) -> String {
        match self {
            ParamType::String { pattern: Some(p) } => {
                format!("text matching {} ({SAFE_CHARS}, at most {STRING_MAX})", p.as_str())
            }
            ParamType::String { pattern: None } => format!("text of {SAFE_CHARS}, at most {STRING_MAX} characters"),
            ParamType::Int { min, max } => format!("a whole number from {min} to {max}"),
            ParamType::Enum(values) => format!("one of {}", values.join(", ")),
            ParamType::Bool => "true or false".into(),
        }
    }

    pub fn parse(&self, raw: &str) -> Result<ParamValue, String> {
        let ok = match self {
            ParamType::String { pattern } => {
                let safe = !raw.is_empty()
                    && raw.len() <= STRING_MAX
                    && raw
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                (safe && pattern.as_ref().is_none_or(|p| p.is_match(raw))).then(|| ParamValue::Str(raw.to_owned()))
            }
            ParamType::Int { min, max } => raw
                .parse::<i64>()
                .ok()
                .filter(|i| (*min..=*max).contains(i))
                .map(ParamValue::Int),
            ParamType::Enum(values) => values.iter().any(|v| v == raw).then(|| ParamValue::Str(raw.to_owned())),
            ParamType::Bool => match raw {
                "true" => Some(ParamValue::Bool(true)),
                "false" => Some(ParamValue::Bool(false)),
                _ => None,
            },
        };
        ok.ok_or_else(|| self.allowed())
    }
}

/// The values a request gives a class, every parameter present (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Params(pub BTreeMap<String, ParamValue>);

impl Params {
    /// Checks `key=value` words against the schema and fills in defaults.
    pub fn parse(schema: &[ParamSpec], text: &str) -> Result<Params, ParamError> {
        let mut given: BTreeMap<String, String> = BTreeMap::new();
        for word in text.split_whitespace() {
            let Some((k, v)) = word.split_once('=') else {
                return Err(ParamError::Syntax(word.to_owned()));
            };
            if given.insert(k.to_owned(), v.to_owned()).is_some() {
                return Err(ParamError::Repeated(k.to_owned()));
            }
        }
        Self::from_map(schema, &given)
    }

    /// The same check for values that come as a map (stored parameters).
    pub fn from_map(schema: &[ParamSpec], given: &BTreeMap<String, String>) -> Result<Params, ParamError> {
        for k in given.keys() {
            if !schema.iter().any(|p| p.name == *k) {
                let known: Vec<&str> = schema.iter().map(|p| p.name.as_str()).collect();
                return Err(ParamError::Unknown {
                    param: k.clone(),
                    known: if known.is_empty() {
                        "no parameters".into()
                    } else {
                        known.join(", ")
                    },
                });
            }
        }
        let mut out = BTreeMap::new();
        for p in schema {
            let value = match (given.get(&p.name), &p.default) {
                (Some(raw), _) => p.kind.parse(raw).map_err(|allowed| ParamError::Invalid {
                    param: p.name.clone(),
                    value: raw.clone(),
                    allowed,
                })?,
                (None, Some(d)) => d.clone(),
                (None, None) => return Err(ParamError::Missing(p.name.clone())),
            };
            out.insert(p.name.clone(), value);
        }
        Ok(Params(out))
    }

    /// The values as text, for labels of stored parameters and messages.
    pub fn as_strings(&self) -> BTreeMap<String, String> {
        self.0.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    }

    /// `size=small storage=20`: the size parameters of `schema`, for prompts and lists.
    pub fn sizes(&self, schema: &[ParamSpec]) -> String {
        schema
            .iter()
            .filter(|p| p.size)
            .filter_map(|p| self.0.get(&p.name).map(|v| format!("{}={v}", p.name)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Vec<ParamSpec> {
        vec![
            ParamSpec {
                name: "size".into(),
                kind: ParamType::Enum(vec!["small".into(), "large".into()]),
                help: String::new(),
                default: Some(ParamValue::Str("small".into())),
                size: true,
            },
            ParamSpec {
                name: "storage".into(),
                kind: ParamType::Int { min: 20, max: 500 },
                help: String::new(),
                default: Some(ParamValue::Int(20)),
                size: true,
            },
            ParamSpec {
                name: "region".into(),
                kind: ParamType::String { pattern: None },
                help: String::new(),
                default: None,
                size: false,
            },
        ]
    }

    #[test]
    fn fills_defaults_and_types_values() {
        let p = Params::parse(&schema(), " storage=100  region=eu-west-1").unwrap();
        assert_eq!(p.0["size"], ParamValue::Str("small".into()));
        assert_eq!(p.0["storage"], ParamValue::Int(100));
        assert_eq!(p.sizes(&schema()), "size=small storage=100");
    }

    #[test]
    fn refusals_name_the_parameter_and_what_is_allowed() {
        let cases = [
            (
                "size=huge region=x",
                "parameter `size`: 'huge' is not allowed; use one of small, large",
            ),
            (
                "storage=5000 region=x",
                "parameter `storage`: '5000' is not allowed; use a whole number from 20 to 500",
            ),
            (
                "colour=red region=x",
                "unknown parameter `colour`; this class takes size, storage, region",
            ),
            ("size=small", "parameter `region` is required"),
            ("region=x region=y", "parameter `region` is given twice"),
            (
                "large region=x",
                "'large' is not a parameter; write them as key=value, e.g. size=small",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Params::parse(&schema(), text).unwrap_err().to_string(), want, "{text}");
        }
        // Nothing that could leave its YAML scalar gets through.
        for bad in ["a:b", "x\"y", "{{x}}", "a\nb", "$(id)"] {
            let err = Params::parse(&schema(), &format!("region={bad}"));
            assert!(err.is_err(), "{bad} passed");
        }
    }
}
