//! Protobuf bodies (`application/vnd.kubernetes.protobuf`), as a real API server reads and
//! writes them for built-in kinds: client-go (so `kubectl create namespace|deployment|...`)
//! sends them, and asks for them back. The fake stores JSON, so each body is converted with the
//! upstream schema (proto_schema.rs), the way the real server's Go structs sit between the two:
//!
//! - The envelope: the magic `k8s\0`, then a `runtime.Unknown` {typeMeta {apiVersion, kind},
//!   raw (the object's message), contentEncoding, contentType}.
//! - Messages map field by field to JSON under the proto field names (which are the JSON
//!   names); the types with their own JSON form are mapped as Go marshals them: `Time` and
//!   `MicroTime` (RFC 3339; the zero time is absent), `Quantity` (a string), `IntOrString`,
//!   `RawExtension`/`FieldsV1` (embedded JSON), bytes (base64), maps.
//! - Go writes every non-pointer field, zero or not. A zero in a field Go tags `omitempty` is
//!   unset and left out of the JSON (proto/omitempty.txt, from the Go types); a pointer's
//!   explicit zero survives (`replicas: 0`, `automountServiceAccountToken: false`).
//!
//! Watches stream protobuf too when asked (length-prefixed bare WatchEvents, see
//! [`watch_response`]): client-go's typed watches (`kubectl run -i` waiting for its pod) read
//! them.
//!
//! Custom resources have no protobuf form: a protobuf body for one is refused with the real
//! 415, and their answers are JSON whatever the Accept header says, as on a real server.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use super::proto_schema::{Field, Label, META, Schema, Ty};
use super::status::ApiError;
use super::util;

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

/// Whether a kind is built in, with a protobuf form (custom resources have none).
pub fn has_form(api_version: &str, kind: &str) -> bool {
    Schema::get().kind(api_version, kind).is_some()
}

/// Whether a Content-Type names the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or("").trim() == MEDIA_TYPE
}

/// Whether the Accept header's preferred type is protobuf (highest q, then first listed).
/// `as=Table` and other conversions stay JSON here.
pub fn prefers_protobuf(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut best: Option<(f32, bool)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let mut q = 1.0f32;
        let mut plain = true;
        for p in parts {
            match p.split_once('=') {
                Some(("q", v)) => q = v.trim().parse().unwrap_or(0.0),
                Some(("as" | "stream", _)) => plain = false,
                _ => {}
            }
        }
        if media.is_empty() || q <= 0.0 {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, plain && media == MEDIA_TYPE));
        }
    }
    best.is_some_and(|(_, proto)| proto)
}

/// The real server's 415 for a protobuf body sent to a kind without a protobuf form.
pub fn unsupported(content_type: &str) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type:?})"
        ),
    )
}

/// A request body for `expect_kind` in `api_version` (the URL's), as the JSON the store keeps.
/// Errors carry the apiserver's texts (handlers/create.go transformDecodeError).
pub fn decode_object(body: &[u8], api_version: &str, expect_kind: &str, content_type: &str) -> Result<Value, ApiError> {
    let schema = Schema::get();
    if schema.kind(api_version, expect_kind).is_none() {
        return Err(unsupported(content_type));
    }
    let unrecognized = |why: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {expect_kind}): {why} ({})",
            summarize(body)
        ))
    };
    let Some(rest) = body.strip_prefix(MAGIC) else {
        return Err(unrecognized(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]".into(),
        ));
    };
    let unknown = decode_message(schema, UNKNOWN, rest).map_err(unrecognized)?;
    let mut av = util::str_at(&unknown, "typeMeta.apiVersion").to_string();
    let mut kind = util::str_at(&unknown, "typeMeta.kind").to_string();
    if av.is_empty() && kind.is_empty() {
        av = api_version.to_string();
        kind = expect_kind.to_string();
    }
    let cannot = |why: String| {
        let version = av.rsplit('/').next().unwrap_or("");
        ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {expect_kind}: {why}"
        ))
    };
    let Some(message) = schema.kind(&av, &kind) else {
        return Err(cannot(format!(
            "no kind {kind:?} is registered for version {av:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )));
    };
    let encoding = util::str_at(&unknown, "contentEncoding");
    if !encoding.is_empty() {
        return Err(cannot(format!("unsupported content encoding {encoding:?}")));
    }
    let raw = util::str_at(&unknown, "raw");
    let raw = B64.decode(raw).map_err(|e| cannot(e.to_string()))?;
    let mut obj = decode_message(schema, message, &raw).map_err(cannot)?;
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(av));
        m.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

/// DeleteOptions (or any meta/v1 kind) sent in protobuf; None when it cannot be read.
pub fn decode_options(body: &[u8]) -> Option<Value> {
    let schema = Schema::get();
    let unknown = decode_message(schema, UNKNOWN, body.strip_prefix(MAGIC)?).ok()?;
    let kind = util::str_at(&unknown, "typeMeta.kind");
    let raw = B64.decode(util::str_at(&unknown, "raw")).ok()?;
    decode_message(schema, &format!("{META}.{kind}"), &raw).ok()
}

/// A JSON answer in protobuf, when its kind has a protobuf form.
pub fn encode_object(v: &Value) -> Option<Vec<u8>> {
    let schema = Schema::get();
    let av = util::str_at(v, "apiVersion");
    let kind = util::str_at(v, "kind");
    let message = schema.kind(av, kind)?;
    let raw = encode_message(schema, message, v);
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, av.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Some(out)
}

/// The body as the apiserver quotes it in decode errors: JSON text, else hex, 30 bytes at most.
fn summarize(body: &[u8]) -> String {
    let cut = &body[..body.len().min(30)];
    let more = if body.len() > 30 { " ..." } else { "" };
    match body.first() {
        None => "<empty>".into(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(cut)),
        Some(_) => format!("{}{more}", cut.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

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

fn decode_message(schema: &Schema, name: &str, buf: &[u8]) -> Result<Value, String> {
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

fn put_bytes(out: &mut Vec<u8>, number: u32, b: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// JSON to a message; keys the message has no field for (apiVersion, kind) are left out.
fn encode_message(schema: &Schema, name: &str, v: &Value) -> Vec<u8> {
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

// ---- watch ---------------------------------------------------------------------------------

/// Whether a watch should stream protobuf: the preferred Accept type is protobuf (client-go
/// may add `;stream=watch`).
pub fn watch_in_protobuf(accept: Option<&str>) -> bool {
    let plain = accept.map(|a| a.replace(";stream=watch", ""));
    prefers_protobuf(plain.as_deref())
}

/// A newline-delimited JSON watch answer as the protobuf stream a real server sends: each
/// event a 4-byte big-endian length, then a bare `meta/v1.WatchEvent` (the stream serializer
/// writes no envelope) whose `object` RawExtension holds the object in the full envelope.
pub fn watch_response(r: axum::response::Response) -> axum::response::Response {
    use futures_util::StreamExt;
    if !r.status().is_success() {
        return r;
    }
    let (mut parts, body) = r.into_parts();
    let mut pending: Vec<u8> = Vec::new();
    let frames = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        pending.extend_from_slice(&chunk);
        let mut out = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(frame) = watch_frame(&line) {
                out.extend(frame);
            }
        }
        Ok::<_, axum::Error>(axum::body::Bytes::from(out))
    });
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/vnd.kubernetes.protobuf;stream=watch"),
    );
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(frames))
}

fn watch_frame(line: &[u8]) -> Option<Vec<u8>> {
    let event: Value = serde_json::from_slice(line).ok()?;
    let object = encode_object(event.get("object")?)?;
    let mut raw_extension = Vec::new();
    put_bytes(&mut raw_extension, 1, &object);
    let mut message = Vec::new();
    put_bytes(&mut message, 1, util::str_at(&event, "type").as_bytes());
    put_bytes(&mut message, 2, &raw_extension);
    let mut frame = u32::try_from(message.len()).ok()?.to_be_bytes().to_vec();
    frame.extend(message);
    Some(frame)
}
