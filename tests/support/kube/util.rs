//! Small helpers shared by the fake API server: time stamps, JSON paths, quantities, hashes.

use serde_json::{Map, Value};

/// Kubernetes `Time` has second precision and is rendered as RFC 3339 in UTC.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

pub fn fmt_time(ts: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(ts.as_second())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `MicroTime` (used by events.eventTime) has microsecond precision.
pub fn fmt_micro_time(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// Looks up a dotted path (`metadata.name`, `spec.template.spec`) in a JSON value.
pub fn path<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |cur, seg| cur.get(seg))
}

pub fn str_at<'a>(v: &'a Value, dotted: &str) -> &'a str {
    path(v, dotted).and_then(Value::as_str).unwrap_or("")
}

pub fn i64_at(v: &Value, dotted: &str) -> Option<i64> {
    path(v, dotted).and_then(Value::as_i64)
}

/// Mutable access to a nested object, creating empty objects (and replacing non-objects) on
/// the way, so callers never need to unwrap.
pub fn obj_mut<'a>(v: &'a mut Value, dotted: &str) -> &'a mut Map<String, Value> {
    let mut cur = v;
    for seg in dotted.split('.').filter(|s| !s.is_empty()) {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else {
            unreachable!("just made an object")
        };
        cur = m.entry(seg.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    match cur {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// Sets `dotted` to `value`, creating parents.
pub fn set_path(v: &mut Value, dotted: &str, value: Value) {
    let (parent, last) = match dotted.rsplit_once('.') {
        Some((p, l)) => (p, l),
        None => ("", dotted),
    };
    obj_mut(v, parent).insert(last.to_string(), value);
}

/// Removes `dotted` if present.
pub fn remove_path(v: &mut Value, dotted: &str) -> Option<Value> {
    let (parent, last) = match dotted.rsplit_once('.') {
        Some((p, l)) => (p, l),
        None => ("", dotted),
    };
    let target = if parent.is_empty() {
        Some(v)
    } else {
        parent.split('.').try_fold(v, |cur, seg| cur.get_mut(seg))
    };
    target.and_then(Value::as_object_mut).and_then(|m| m.remove(last))
}

/// Sets a default when the field is missing or null.
pub fn default_path(v: &mut Value, dotted: &str, value: Value) {
    if path(v, dotted).is_none_or(Value::is_null) {
        set_path(v, dotted, value);
    }
}

/// Serialises with sorted keys whatever serde_json's map flavour is, so hashes are stable.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    write(&m[*k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

pub fn fnv32(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The alphabet Kubernetes uses for generated suffixes (no vowels, no confusable characters).
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Like `rand.SafeEncodeString(fmt.Sprint(hash))` in the deployment controller: each decimal
/// digit of the hash mapped into the safe alphabet (so `pod-template-hash` looks familiar).
pub fn safe_encode_hash(hash: u32) -> String {
    hash.to_string()
        .bytes()
        .map(|b| SAFE[b as usize % SAFE.len()] as char)
        .collect()
}

/// A deterministic pseudo-random generator (xorshift) for name suffixes and IPs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Five characters like the `generateName` suffixes of real pods.
    pub fn suffix(&mut self) -> String {
        (0..5)
            .map(|_| SAFE[(self.next_u64() % SAFE.len() as u64) as usize] as char)
            .collect()
    }
}

/// Parses a resource quantity ("100m", "1.5", "128Mi", "1G", "2e3") into base units.
pub fn parse_quantity(q: &Value) -> Option<f64> {
    let s = match q {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suf, mult) in suffixes {
        if let Some(num) = s.strip_suffix(suf) {
            return num.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    for (suf, mult) in [("P", 1e15), ("E", 1e18)] {
        if let Some(num) = s.strip_suffix(suf) {
            return num.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    s.parse::<f64>().ok()
}

/// Renders a quantity the way `kubectl describe quota` shows it: millis for fractional CPU,
/// binary suffixes for round memory sizes, plain integers otherwise.
pub fn fmt_quantity(resource: &str, v: f64) -> String {
    let is_whole = (v - v.round()).abs() < 1e-9;
    if resource.contains("memory") || resource.contains("storage") {
        let v = v.round() as i64;
        for (suf, m) in [("Gi", 1i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if v != 0 && v % m == 0 {
                return format!("{}{suf}", v / m);
            }
        }
        return v.to_string();
    }
    if is_whole {
        format!("{}", v.round() as i64)
    } else {
        format!("{}m", (v * 1000.0).round() as i64)
    }
}

/// Standard base64 (for Secret `stringData` -> `data`), written out to avoid a dependency.
pub fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

pub fn is_base64(s: &str) -> bool {
    s.len().is_multiple_of(4)
        && s.trim_end_matches('=').len() + 2 >= s.len()
        && s.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
