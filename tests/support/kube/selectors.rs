//! Label and field selectors with the operators of `k8s.io/apimachinery/pkg/labels`.

use serde_json::{Map, Value};

use super::util;

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(pub Vec<Requirement>);

/// Splits on commas that are not inside `( )`, so `a in (x,y),b` is two requirements.
fn split_top(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_err(part: &str, why: &str) -> String {
    format!("unable to parse requirement: {why}: {part:?}")
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let p = part.trim();
    if let Some(key) = p.strip_prefix('!') {
        let key = key.trim();
        if !valid_key(key) {
            return Err(parse_err(p, "invalid label key"));
        }
        return Ok(Requirement {
            key: key.to_string(),
            op: Op::NotExists,
        });
    }
    // Set-based: `key in (a, b)` / `key notin (a,b)`.
    if let Some(open) = p.find('(') {
        let head = p[..open].trim();
        let Some(body) = p[open + 1..].strip_suffix(')') else {
            return Err(parse_err(p, "expected ')'"));
        };
        let mut words = head.split_whitespace();
        let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
            return Err(parse_err(p, "expected `<key> in|notin (<values>)`"));
        };
        if !valid_key(key) {
            return Err(parse_err(p, "invalid label key"));
        }
        let values: Vec<String> = body.split(',').map(|v| v.trim().to_string()).collect();
        if let Some(bad) = values.iter().find(|v| !valid_value(v)) {
            return Err(parse_err(p, &format!("invalid label value {bad:?}")));
        }
        let op = match op {
            "in" => Op::In(values),
            "notin" => Op::NotIn(values),
            other => return Err(parse_err(p, &format!("unknown operator {other:?}"))),
        };
        return Ok(Requirement {
            key: key.to_string(),
            op,
        });
    }
    for (tok, make) in [
        ("!=", (|v: String| Op::NotEq(v)) as fn(String) -> Op),
        ("==", |v| Op::Eq(v)),
        ("=", |v| Op::Eq(v)),
    ] {
        if let Some((k, v)) = p.split_once(tok) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) {
                return Err(parse_err(p, "invalid label key"));
            }
            if !valid_value(v) {
                return Err(parse_err(p, &format!("invalid label value {v:?}")));
            }
            return Ok(Requirement {
                key: k.to_string(),
                op: make(v.to_string()),
            });
        }
    }
    for (tok, gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = p.split_once(tok) {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| parse_err(p, "for 'Gt', 'Lt' operators, the value must be an integer"))?;
            return Ok(Requirement {
                key: k.trim().to_string(),
                op: if gt { Op::Gt(n) } else { Op::Lt(n) },
            });
        }
    }
    if !valid_key(p) {
        return Err(parse_err(p, "invalid label key"));
    }
    Ok(Requirement {
        key: p.to_string(),
        op: Op::Exists,
    })
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(LabelSelector::default());
        }
        split_top(s)
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| parse_requirement(p))
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    /// From a `metav1.LabelSelector` object (matchLabels + matchExpressions).
    pub fn from_object(sel: &Value) -> Self {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::Eq(v.as_str().unwrap_or("").to_string()),
                });
            }
        }
        for e in sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = util::str_at(e, "key").to_string();
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let op = match util::str_at(e, "operator") {
                "In" => Op::In(values),
                "NotIn" => Op::NotIn(values),
                "Exists" => Op::Exists,
                _ => Op::NotExists,
            };
            reqs.push(Requirement { key, op });
        }
        LabelSelector(reqs)
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.0.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match &r.op {
                Op::Eq(x) => v == Some(x.as_str()),
                Op::NotEq(x) => v != Some(x.as_str()),
                Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::NotIn(xs) => v.is_none_or(|v| xs.iter().all(|x| x != v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Gt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
                Op::Lt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
            }
        })
    }

    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(util::path(obj, "metadata.labels").and_then(Value::as_object))
    }

    /// The string form (`a=b,c in (d)`) used by `Scale.status.selector`.
    pub fn to_query(&self) -> String {
        self.0
            .iter()
            .map(|r| match &r.op {
                Op::Eq(v) => format!("{}={v}", r.key),
                Op::NotEq(v) => format!("{}!={v}", r.key),
                Op::In(vs) => format!("{} in ({})", r.key, vs.join(",")),
                Op::NotIn(vs) => format!("{} notin ({})", r.key, vs.join(",")),
                Op::Exists => r.key.clone(),
                Op::NotExists => format!("!{}", r.key),
                Op::Gt(n) => format!("{}>{n}", r.key),
                Op::Lt(n) => format!("{}<{n}", r.key),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A field selector: `path=value`, `path==value`, `path!=value`, comma-separated. Any dotted
/// path into the object is accepted (the real server allows a per-kind list; being lenient
/// costs nothing here and covers `involvedObject.name`, `status.phase`, `spec.nodeName`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid selector: '{s}'; can't understand '{part}'"));
            };
            out.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, eq, want)| {
            let got = match util::path(obj, k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (got == *want) == *eq
        })
    }

    /// The name a selector pins (`metadata.name=x`), used to answer watches cheaply.
    pub fn pinned_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, eq, _)| k == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}
