//! Protobuf bodies (`application/vnd.kubernetes.protobuf`), as a real API server reads and
//! writes them for built-in kinds: client-go (so `kubectl create namespace|deployment|...`)
//! sends them, and asks for them back. The fake stores JSON, so each body is converted with the
//! upstream schema (proto_schema.rs; the wire codec is proto_codec.rs), the way the real
//! server's Go structs sit between the two:
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
use serde_json::{Value, json};

use super::proto_codec::{decode_message, encode_message, put_bytes};
use super::proto_schema::{META, Schema};
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
