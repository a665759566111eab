//! A command's arguments from what was typed: positional words as the spec's pattern takes
//! them, `name=value` tokens in any order, defaults, and each value typed and checked
//! (commands/args.rs). An error names the argument and shows the usage.

use std::collections::BTreeMap;

use super::{
    args::{Args, parse_value},
    keyed,
    router::RouteError,
    spec::{ArgType, CommandSpec},
};

/// Binds `spec`'s arguments from `text` (which starts with the command's name): as typed
/// when the pattern takes it so, else with `name=value` tokens taken out first.
pub(super) fn bind(spec: &CommandSpec, text: &str) -> Result<Args, RouteError> {
    let typed = spec
        .pattern
        .captures(text)
        .map(|caps| collect(spec, &caps, &BTreeMap::new()));
    if let Some(Ok(args)) = typed {
        return Ok(args);
    }
    let split = keyed::split(spec, text).map_err(|(key, message)| arg_error(spec, &key, message))?;
    match typed {
        // Matched as typed but a value is wrong, and nothing went by name: that value's error.
        Some(Err(e)) if split.keyed.is_empty() => Err(e),
        _ => bind_split(spec, &split),
    }
}

fn bind_split(spec: &CommandSpec, split: &keyed::Split) -> Result<Args, RouteError> {
    let named: Vec<&str> = split.keyed.keys().map(String::as_str).collect();
    // Positional words fill their places as usual; a place also given by name is an error.
    if let Some(caps) = spec.pattern.captures(&split.rest) {
        return match named.iter().find(|k| caps.name(k).is_some_and(|m| !m.is_empty())) {
            Some(key) => Err(arg_error(spec, key, keyed::twice(key))),
            None => collect(spec, &caps, &split.keyed),
        };
    }
    // Places given by name are left out of the pattern, with their keywords (` to `).
    if let Some(caps) = keyed::rewritten(spec, &named, &[]).and_then(|re| re.captures(&split.rest)) {
        return collect(spec, &caps, &split.keyed);
    }
    // A value the pattern does not list: let validation say which are allowed.
    let listed: Vec<&str> = spec
        .args
        .iter()
        .filter(|a| matches!(a.kind, ArgType::Enum(_) | ArgType::Tier(_)) && !split.keyed.contains_key(&a.name))
        .map(|a| a.name.as_str())
        .collect();
    if !listed.is_empty()
        && let Some(caps) = keyed::rewritten(spec, &named, &listed).and_then(|re| re.captures(&split.rest))
    {
        return collect(spec, &caps, &split.keyed);
    }
    Err(RouteError::Usage {
        command: spec.name.clone(),
        usage: spec.usage.clone(),
        examples: spec.examples.clone(),
        keyed: !spec.args.is_empty(),
    })
}

/// Each argument from the match, else from `keyed`, else its default; typed and checked.
fn collect(
    spec: &CommandSpec,
    caps: &regex::Captures<'_>,
    keyed: &BTreeMap<String, String>,
) -> Result<Args, RouteError> {
    let mut args = Args::default();
    for a in &spec.args {
        let raw = caps
            .name(&a.name)
            .map(|m| m.as_str())
            .filter(|s| !s.is_empty())
            .or_else(|| keyed.get(&a.name).map(String::as_str));
        let arg_err = |message: String| arg_error(spec, &a.name, message);
        match (raw, &a.default) {
            // `stage@eu`: the tier alone (what approval rules compare) and the cluster apart.
            (Some(v), _) if matches!(a.kind, ArgType::Tier(_)) => {
                let v = parse_value(&a.name, &a.kind, v).map_err(arg_err)?;
                let (tier, cluster) = v.split_once('@').unwrap_or((&v, ""));
                args.insert(&a.name, tier.to_owned());
                if !cluster.is_empty() {
                    args.insert(TIER_CLUSTER, cluster.to_owned());
                }
            }
            (Some(v), _) => args.insert(&a.name, parse_value(&a.name, &a.kind, v).map_err(arg_err)?),
            (None, Some(d)) => args.insert(&a.name, d.clone()),
            (None, None) if a.optional => {}
            (None, None) => return Err(arg_err(format!("is required ({})", a.kind.allowed()))),
        }
    }
    Ok(args)
}

/// The argument a `TIER@CLUSTER` value's cluster is stored under.
pub const TIER_CLUSTER: &str = "cluster";

fn arg_error(spec: &CommandSpec, arg: &str, message: String) -> RouteError {
    RouteError::Arg {
        command: spec.name.clone(),
        arg: arg.to_owned(),
        message,
        usage: spec.usage.clone(),
        keyed: !spec.args.is_empty(),
    }
}
