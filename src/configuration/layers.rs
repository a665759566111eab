//! Layered configuration: the embedded defaults, a TOML file over them (named maps such as
//! `users` replaced whole, other tables merged key by key), then DECKHAND_* environment
//! variables (`DECKHAND_SERVER__LISTEN` is `server.listen`). Errors name the key and, for one
//! set from the environment, the variable.

use std::{collections::BTreeMap, path::Path};

use super::{Config, ConfigError, DEFAULT_TOML};

/// Environment variables the CLI reads itself; they are not configuration keys.
const CLIENT_VARS: &[&str] = &["DECKHAND_CONFIG", "DECKHAND_URL", "DECKHAND_TOKEN", "DECKHAND_OUTPUT"];

/// The test suite's and benchmarks' own variables (`scripts/test` exports some of them, and
/// the tests run `deckhand` as a child process with them set); not configuration keys.
fn suite_var(var: &str) -> bool {
    var.starts_with("DECKHAND_TEST_")
        || var.starts_with("DECKHAND_BENCH_")
        || matches!(var, "DECKHAND_KUBECTL_TESTS" | "DECKHAND_BROWSER_TESTS")
}

/// Named maps an overlay replaces whole instead of merging into.
const REPLACED_WHOLE: &[&str] = &["tiers", "groups", "users", "clusters"];

/// The embedded defaults, then `file`, then the environment's DECKHAND_* keys, deserialized
/// (not yet validated).
pub(super) fn layered(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut root = parse_toml("config/default.toml (embedded)", DEFAULT_TOML)?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let overlay = parse_toml(&path.display().to_string(), &text)?;
        merge(&mut root, overlay, 0);
    }
    let mut from_env = BTreeMap::new();
    for (var, raw) in env {
        let Some(key) = env_key(&var) else { continue };
        let value = env_value(&raw);
        set_path(&mut root, &key, value.clone()).map_err(|message| ConfigError::Key {
            key: key.join("."),
            origin: format!(" (from {var})"),
            message,
        })?;
        let typed = !value.is_str();
        from_env.insert(key.join("."), EnvSetting { var, key, raw, typed });
    }
    deserialize(root, &mut from_env)
}

fn parse_toml(path: &str, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn merge(base: &mut toml::Table, overlay: toml::Table, depth: usize) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o))
                if !(depth == 0 && REPLACED_WHOLE.contains(&k.as_str())) =>
            {
                merge(b, o, depth + 1)
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// `DECKHAND_SERVER__LISTEN` -> `server.listen`; a few well-known short names too.
fn env_key(var: &str) -> Option<Vec<String>> {
    match var {
        "DATABASE_URL" => return Some(vec!["store".into(), "url".into()]),
        "DECKHAND_LISTEN" => return Some(vec!["server".into(), "listen".into()]),
        v if CLIENT_VARS.contains(&v) || suite_var(v) => return None,
        _ => {}
    }
    let rest = var.strip_prefix("DECKHAND_")?;
    Some(rest.split("__").map(str::to_ascii_lowercase).collect())
}

/// Numbers, booleans and arrays are read as TOML; anything else is a string.
fn env_value(raw: &str) -> toml::Value {
    let looks_typed = raw.starts_with('[')
        || raw == "true"
        || raw == "false"
        || (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()));
    if looks_typed
        && let Ok(t) = format!("v = {raw}").parse::<toml::Table>()
        && let Some(v) = t.get("v")
    {
        return v.clone();
    }
    toml::Value::String(raw.to_owned())
}

fn set_path(root: &mut toml::Table, key: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = key.split_last().ok_or("empty key")?;
    let mut table = root;
    for part in parents {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is not a section"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// A key set from the environment: the variable, and whether its text was read as TOML.
struct EnvSetting {
    var: String,
    key: Vec<String>,
    raw: String,
    typed: bool,
}

/// Deserializes the merged table. The environment has no types, so `1187654321098765432`
/// for a string key (an id) was read as a number: when a key set from the environment is
/// refused for its type, its text is tried as a string before the error stands.
fn deserialize(mut root: toml::Table, from_env: &mut BTreeMap<String, EnvSetting>) -> Result<Config, ConfigError> {
    loop {
        let e = match serde_path_to_error::deserialize(toml::Value::Table(root.clone())) {
            Ok(config) => return Ok(config),
            Err(e) => e,
        };
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        if message.starts_with("invalid type")
            && let Some(setting) = from_env.get_mut(&key).filter(|s| s.typed)
        {
            setting.typed = false;
            set_path(&mut root, &setting.key, toml::Value::String(setting.raw.clone()))
                .map_err(|m| ConfigError::key(key.clone(), m))?;
            continue;
        }
        let origin = from_env
            .iter()
            .find(|(k, _)| key.starts_with(k.as_str()) || k.starts_with(&key))
            .map(|(_, s)| format!(" (from {})", s.var))
            .unwrap_or_default();
        return Err(ConfigError::Key { key, origin, message });
    }
}
