//! The protobuf wire format of Kubernetes' messages, to and from the JSON the fake stores,
//! driven by the schema in proto_schema.rs (see protobuf.rs for what maps to what). Decoding
//! never trusts the input: every length is checked, unknown fields are skipped as Go's
//! generated code skips them, and errors carry gogo-protobuf's texts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use super::proto_schema::{Field, Label, META, Schema, Ty};
use super::util;

// ---- decoding ------------------------------------------------------------------------------

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("unexpected EOF")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("proto: integer overflow".into())
}

fn chunk<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], String> {
    let len = usize::try_from(varint(buf, pos)?).map_err(|_| "proto: negative length found during unmarshaling")?;
    let end = pos
        .checked_add(len)
        .filter(|e| *e <= buf.len())
        .ok_or("unexpected EOF")?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(s)
}

/// Go's generated unmarshalers name the field in Go case.
fn go_name(f: &Field) -> String {
    let mut c = f.name.chars();
    c.next()
        .map(|h| h.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

pub fn decode_message(schema: &Schema, name: &str, buf: &[u8]) -> Result<Value, String> {
    let msg = schema.messages.get(name).ok_or_else(|| format!("no message {name}"))?;
    let mut out = Map::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = ((key >> 3) as u32, key & 7);
        if number == 0 {
            return Err("proto: illegal tag 0 (wire type 0)".into());
        }
        let Some(f) = msg.field(number) else {
            skip(buf, &mut pos, wire)?;
            continue;
        };
        let wrong = || format!("proto: wrong wireType = {wire} for field {}", go_name(f));
        match (&f.label, &f.ty, wire) {
            (Label::Map, _, 2) => {
                let entry = chunk(buf, &mut pos)?;
                let (k, v) = decode_entry(schema, f, entry)?;
                let map = out.entry(f.name.clone()).or_insert_with(|| json!({}));
                if let (Some(m), Some(v)) = (map.as_object_mut(), v) {
                    m.insert(k, v);
                }
            }
            // Packed repeated numbers (accepted as any proto2 reader does).
            (Label::Repeated, Ty::Int32 | Ty::Int64 | Ty::Bool, 2) => {
                let packed = chunk(buf, &mut pos)?;
                let mut p = 0;
                while p < packed.len() {
                    let v = scalar_of(&f.ty, varint(packed, &mut p)?);
                    push(&mut out, f, Some(v));
                }
            }
            (Label::Map, _, _) => return Err(wrong()),
            (_, Ty::Int32 | Ty::Int64 | Ty::Bool, 0) => {
                let v = scalar_of(&f.ty, varint(buf, &mut pos)?);
                let unset = f.omit_zero && f.label == Label::Optional && (v == json!(0) || v == json!(false));
                push(&mut out, f, (!unset).then_some(v));
            }
            (_, Ty::String, 2) => {
                let s = String::from_utf8_lossy(chunk(buf, &mut pos)?).into_owned();
                let unset = f.omit_zero && f.label == Label::Optional && s.is_empty();
                push(&mut out, f, (!unset).then(|| json!(s)));
            }
            (_, Ty::Bytes, 2) => {
                let b = chunk(buf, &mut pos)?;
                push(&mut out, f, Some(json!(B64.encode(b))));
            }
            (_, Ty::Message(t), 2) => {
                let b = chunk(buf, &mut pos)?;
                push(&mut out, f, decode_value(schema, t, b)?);
            }
            _ => return Err(wrong()),
        }
    }
    Ok(Value::Object(out))
}

fn push(out: &mut Map<String, Value>, f: &Field, v: Option<Value>) {
    match (&f.label, v) {
        (Label::Repeated, Some(v)) => {
            if let Some(a) = out.entry(f.name.clone()).or_insert_with(|| json!([])).as_array_mut() {
                a.push(v);
            }
        }
        (_, Some(v)) => {
            out.insert(f.name.clone(), v);
        }
        (_, None) => {
            out.remove(&f.name);
        }
    }
}

fn scalar_of(ty: &Ty, v: u64) -> Value {
    match ty {
        Ty::Bool => json!(v != 0),
        Ty::Int32 => json!(v as i64 as i32),
        _ => json!(v as i64),
    }
}

fn skip(buf: &[u8], pos: &mut usize, wire: u64) -> Result<(), String> {
    let n = match wire {
        0 => return varint(buf, pos).map(drop),
        2 => return chunk(buf, pos).map(drop),
        1 => 8,
        5 => 4,
        w => return Err(format!("proto: illegal wireType {w}")),
    };
    *pos = pos.checked_add(n).filter(|e| *e <= buf.len()).ok_or("unexpected EOF")?;
    Ok(())
}

/// One `map<string, V>` entry: {1: key, 2: value}.
fn decode_entry(schema: &Schema, f: &Field, entry: &[u8]) -> Result<(String, Option<Value>), String> {
    let (mut key, mut value) = (String::new(), None);
    let mut pos = 0;
    while pos < entry.len() {
        let k = varint(entry, &mut pos)?;
        match (k >> 3, k & 7) {
            (1, 2) => key = String::from_utf8_lossy(chunk(entry, &mut pos)?).into_owned(),
            (2, 2) => {
                let b = chunk(entry, &mut pos)?;
                value = match &f.ty {
                    Ty::String => Some(json!(String::from_utf8_lossy(b))),
                    Ty::Bytes => Some(json!(B64.encode(b))),
                    Ty::Message(t) => decode_value(schema, t, b)?,
                    _ => return Err(format!("proto: wrong wireType = 2 for field {}", go_name(f))),
                };
            }
            (_, w) => skip(entry, &mut pos, w)?,
        }
    }
    let value = value.or_else(|| match &f.ty {
        Ty::String | Ty::Bytes => Some(json!("")),
        _ => None,
    });
    Ok((key, value))
}

/// A message as JSON: the types with their own JSON form, else field by field. None is the
/// JSON null Go writes (then left out), e.g. for the zero Time.
fn decode_value(schema: &Schema, name: &str, b: &[u8]) -> Result<Option<Value>, String> {
    let short = name.rsplit('.').next().unwrap_or("");
    let m = decode_message(schema, name, b)?;
    let int = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
    Ok(match name {
        _ if name == format!("{META}.Time") || name == format!("{META}.MicroTime") => {
            let (s, n) = (int("seconds"), int("nanos"));
            if s == 0 && n == 0 {
                return Ok(None);
            }
            let ts = jiff::Timestamp::new(s, n as i32).map_err(|e| e.to_string())?;
            Some(json!(if short == "Time" {
                util::fmt_time(ts)
            } else {
                util::fmt_micro_time(ts)
            }))
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => Some(m.get("string").cloned().unwrap_or(json!("0"))),
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Some(if int("type") == 1 {
            m.get("strVal").cloned().unwrap_or(json!(""))
        } else {
            json!(int("intVal"))
        }),
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => embedded_json(m.get("raw")),
        _ if name == format!("{META}.FieldsV1") => embedded_json(m.get("Raw")),
        _ => Some(m),
    })
}

fn embedded_json(raw: Option<&Value>) -> Option<Value> {
    let bytes = B64.decode(raw?.as_str()?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

// ---- encoding ------------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, number: u32, wire: u64) {
    put_varint(out, (u64::from(number) << 3) | wire);
}

pub fn put_bytes(out: &mut Vec<u8>, number: u32, b: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// JSON to a message; keys the message has no field for (apiVersion, kind) are left out.
pub fn encode_message(schema: &Schema, name: &str, v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(msg) = schema.messages.get(name) else {
        return out;
    };
    for f in &msg.fields {
        let Some(val) = v.get(&f.name).filter(|x| !x.is_null()) else {
            continue;
        };
        match f.label {
            Label::Optional => encode_field(schema, &mut out, f, val),
            Label::Repeated => {
                for item in val.as_array().into_iter().flatten() {
                    encode_field(schema, &mut out, f, item);
                }
            }
            Label::Map => {
                let mut entries: Vec<_> = val.as_object().into_iter().flatten().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (k, item) in entries {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, k.as_bytes());
                    let value = Field { number: 2, ..f.clone() };
                    encode_field(schema, &mut entry, &value, item);
                    put_bytes(&mut out, f.number, &entry);
                }
            }
        }
    }
    out
}

fn encode_field(schema: &Schema, out: &mut Vec<u8>, f: &Field, v: &Value) {
    let n = f.number;
    match &f.ty {
        Ty::String => match v {
            Value::String(s) => put_bytes(out, n, s.as_bytes()),
            other => put_bytes(out, n, other.to_string().as_bytes()),
        },
        Ty::Bytes => {
            if let Some(b) = v.as_str().and_then(|s| B64.decode(s).ok()) {
                put_bytes(out, n, &b);
            }
        }
        Ty::Bool => {
            put_key(out, n, 0);
            put_varint(out, u64::from(v.as_bool().unwrap_or(false)));
        }
        Ty::Int32 | Ty::Int64 => {
            put_key(out, n, 0);
            put_varint(out, v.as_i64().unwrap_or(0) as u64);
        }
        Ty::Message(t) => {
            if let Some(b) = encode_value(schema, t, v) {
                put_bytes(out, n, &b);
            }
        }
    }
}

fn encode_value(schema: &Schema, name: &str, v: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match name {
        _ if name == format!("{META}.Time") || name == format!("{META}.MicroTime") => {
            let ts = util::parse_time(v.as_str()?)?;
            put_key(&mut out, 1, 0);
            put_varint(&mut out, ts.as_second() as u64);
            put_key(&mut out, 2, 0);
            put_varint(&mut out, i64::from(ts.subsec_nanosecond()) as u64);
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => {
            let s = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
            put_bytes(&mut out, 1, s.as_bytes());
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            let (ty, int, s) = match v {
                Value::String(s) => (1, 0, s.as_str()),
                other => (0, other.as_i64().unwrap_or(0), ""),
            };
            put_key(&mut out, 1, 0);
            put_varint(&mut out, ty);
            put_key(&mut out, 2, 0);
            put_varint(&mut out, int as u64);
            put_bytes(&mut out, 3, s.as_bytes());
        }
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => {
            put_bytes(&mut out, 1, &serde_json::to_vec(v).ok()?);
        }
        _ if name == format!("{META}.FieldsV1") => {
            put_bytes(&mut out, 1, &serde_json::to_vec(v).ok()?);
        }
        _ => return Some(encode_message(schema, name, v)),
    }
    Some(out)
}
