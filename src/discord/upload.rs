//! Files in Discord messages (a load test's chart): Discord takes them as multipart/form-data
//! with the message as `payload_json` and the file as `files[0]`, referenced from the
//! payload's `attachments`. Built by hand: the one multipart body deckhand sends does not
//! justify another dependency.

use serde_json::{Value, json};

use crate::domain::new_token;

pub struct FilePart<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// Returns the Content-Type (with its boundary) and the body.
pub fn multipart(payload: &Value, file: &FilePart<'_>) -> (String, Vec<u8>) {
    let boundary = format!("deckhand-{}", new_token(24));
    let mut payload = payload.clone();
    payload["attachments"] = json!([{ "id": 0, "filename": file.filename }]);
    // Quotes or line breaks in a name would break the part headers.
    let filename: String = file
        .filename
        .chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\'))
        .collect();
    let mut body = Vec::with_capacity(file.bytes.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{payload}\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"{filename}\"\r\nContent-Type: {}\r\n\r\n",
            file.content_type
        )
        .as_bytes(),
    );
    body.extend_from_slice(file.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_payload_and_the_file() {
        let (ct, body) = multipart(
            &json!({"content": "hi"}),
            &FilePart {
                filename: "a\"b.png",
                content_type: "image/png",
                bytes: b"\x89PNG",
            },
        );
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(
            text.contains(r#""attachments":[{"filename":"a\"b.png","id":0}]"#),
            "{text}"
        );
        assert!(text.contains("name=\"files[0]\"; filename=\"ab.png\"\r\nContent-Type: image/png\r\n\r\n"));
        let mut tail = b"\x89PNG\r\n".to_vec();
        tail.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        assert!(body.ends_with(&tail));
    }
}
