//! Arguments bound from a command's text, kept in canonical string form so they store as
//! JSON and read back typed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::spec::ArgType;
use crate::domain::{HumanDuration, ImageRef, Name, RequestId};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Args(BTreeMap<String, String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument `{0}` is missing or invalid: {1}")]
pub struct ArgAccessError(pub String, pub String);

/// Checks `raw`, given for the argument `name`, against `kind` and returns its canonical form.
pub fn parse_value(name: &str, kind: &ArgType, raw: &str) -> Result<String, String> {
    match kind {
        ArgType::Name => Name::parse(raw).map(|n| n.to_string()).map_err(|e| e.to_string()),
        ArgType::Duration => raw
            .parse::<HumanDuration>()
            .map(|d| d.to_string())
            .map_err(|e| e.to_string()),
        ArgType::Image => ImageRef::parse(raw).map(|_| raw.to_owned()).map_err(|e| e.to_string()),
        ArgType::Int { min, max } => match raw.parse::<i64>() {
            Ok(n) if (*min..=*max).contains(&n) => Ok(n.to_string()),
            Ok(n) => Err(format!("{n} is out of range: use a whole number from {min} to {max}")),
            Err(_) => Err(format!("'{raw}' is not a whole number: use one from {min} to {max}")),
        },
        ArgType::Enum(values) | ArgType::Tier(values) if values.iter().any(|v| v == raw) => Ok(raw.to_owned()),
        ArgType::Enum(values) => Err(format!(
            "'{raw}' is not a valid {name}; use one of {}",
            values.join(", ")
        )),
        ArgType::Tier(values) => Err(tier_error(raw, values)),
        ArgType::RequestId => RequestId::parse(raw)
            .map(|id| id.to_string())
            .ok_or_else(|| format!("'{raw}' is not a request id: they look like r-0pcx9k2m4f7hqa")),
        ArgType::Text if raw.chars().count() > 500 => Err("is longer than 500 characters".into()),
        ArgType::Text => Ok(raw.to_owned()),
    }
}

/// Why `raw` is not one of the tier `values`; for `TIER@CLUSTER`, which part is wrong.
fn tier_error(raw: &str, values: &[String]) -> String {
    let plain: Vec<&str> = values.iter().filter(|v| !v.contains('@')).map(String::as_str).collect();
    let Some((tier, cluster)) = raw.split_once('@') else {
        return format!("'{raw}' is not a tier; use one of {}", values.join(", "));
    };
    let mut clusters: Vec<&str> = values
        .iter()
        .filter_map(|v| v.split_once('@'))
        .map(|(_, c)| c)
        .collect();
    clusters.sort_unstable();
    clusters.dedup();
    if !plain.contains(&tier) {
        format!("'{tier}' is not a tier; use one of {}", plain.join(", "))
    } else if clusters.is_empty() {
        format!("'{raw}': there are no clusters to choose from; use the tier alone ({tier})")
    } else if !clusters.contains(&cluster) {
        format!(
            "there is no cluster '{cluster}'; the clusters are {}",
            clusters.join(", ")
        )
    } else {
        let serving: Vec<&str> = values
            .iter()
            .filter_map(|v| v.split_once('@'))
            .filter(|(t, _)| *t == tier)
            .map(|(_, c)| c)
            .collect();
        format!(
            "cluster {cluster} does not serve tier {tier}; {tier} is served by {}",
            serving.join(", ")
        )
    }
}

impl Args {
    pub fn insert(&mut self, name: &str, value: String) {
        self.0.insert(name.to_owned(), value);
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    fn typed<T, E: ToString>(
        &self,
        name: &str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ArgAccessError> {
        self.get(name)
            .map(|v| f(v).map_err(|e| ArgAccessError(name.to_owned(), e.to_string())))
            .transpose()
    }

    pub fn name(&self, arg: &str) -> Result<Option<Name>, ArgAccessError> {
        self.typed(arg, Name::parse)
    }

    pub fn duration(&self, arg: &str) -> Result<Option<HumanDuration>, ArgAccessError> {
        self.typed(arg, str::parse::<HumanDuration>)
    }

    pub fn image(&self, arg: &str) -> Result<Option<ImageRef>, ArgAccessError> {
        self.typed(arg, ImageRef::parse)
    }

    pub fn int(&self, arg: &str) -> Result<Option<i64>, ArgAccessError> {
        self.typed(arg, str::parse::<i64>)
    }

    pub fn request_id(&self, arg: &str) -> Result<Option<RequestId>, ArgAccessError> {
        self.typed(arg, |v| RequestId::parse(v).ok_or("not a request id"))
    }

    pub fn require<T>(value: Result<Option<T>, ArgAccessError>, arg: &str) -> Result<T, ArgAccessError> {
        value?.ok_or_else(|| ArgAccessError(arg.to_owned(), "not given".into()))
    }
}
