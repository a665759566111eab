//! The page itself: plain HTML and one stylesheet, no scripts. Every value that comes from a
//! person or the cluster (command text, names, event messages, output) goes through
//! [`escape`]; links are written only when they are http(s) URLs.

use std::sync::LazyLock;

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

use crate::{
    domain::format_ms,
    events::EventData,
    store::{ApprovalRecord, Event, EventKind, RequestRecord},
};

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse}td,th{padding:.2em .8em .2em 0;vertical-align:top;text-align:left}\
pre{background:#f4f4f4;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-word}\
.muted{color:#777}img{max-width:100%;border:1px solid #ddd}";

/// The page's policy: nothing runs, nothing loads from elsewhere, the only style is ours
/// (by its hash), images only from deckhand.
pub(super) static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; img-src 'self'; style-src 'sha256-{hash}'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

/// For text and attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    )
}

/// The page of a dead or unknown link: what happened and how to get a new one.
pub fn expired(request_id: Option<&str>) -> String {
    let id = request_id.map_or_else(|| "ID".to_owned(), escape);
    document(
        "Link expired",
        &format!(
            "<h1>This link has expired</h1>\n<p>Links to a request's page are personal and last a limited time \
             (or this one never existed). Ask deckhand for a new one with <code>/deckhand request {id}</code>; \
             it answers you privately with an <em>Open page</em> button.</p>\n"
        ),
    )
}

/// What the page shows: the request, its events as `viewer` may read them, its decisions.
pub struct View<'a> {
    pub request: &'a RequestRecord,
    pub viewer: &'a str,
    /// Already passed through `visibility::events_for` for the viewer.
    pub events: &'a [Event],
    pub approvals: &'a [ApprovalRecord],
    /// The path files are served under, relative to the page (`{token}/files`).
    pub files: &'a str,
    pub expires_at: i64,
}

fn row(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!(
        "<tr><th>{}</th><td>{}</td></tr>\n",
        escape(name),
        escape(value)
    ));
}

fn http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

pub fn page(v: &View<'_>) -> String {
    let r = v.request;
    let mut b = format!(
        "<h1>Request {} <span class=\"muted\">({})</span></h1>\n<pre>{}</pre>\n<table>\n",
        escape(r.id.as_str()),
        escape(r.state.as_str()),
        escape(&r.text)
    );
    row(&mut b, "command", &r.command);
    row(&mut b, "requester", &r.requester);
    row(&mut b, "state", r.state.as_str());
    row(&mut b, "asked", &format_ms(r.created_at));
    if let Some(at) = r.started_at {
        row(&mut b, "started", &format_ms(at));
    }
    if let Some(at) = r.finished_at {
        row(&mut b, "finished", &format_ms(at));
    }
    if let Some(outcome) = &r.outcome {
        row(&mut b, "outcome", outcome);
    }
    b.push_str("</table>\n");
    approval(&mut b, v);
    events(&mut b, v);
    outputs(&mut b, v);
    b.push_str(&format!(
        "<p class=\"muted\">Shown to {} as they may read it. This link is theirs alone and works until {}; \
         <code>/deckhand request {}</code> gives a new one.</p>\n",
        escape(v.viewer),
        escape(&format_ms(v.expires_at)),
        escape(r.id.as_str())
    ));
    document(&format!("{} · {} · deckhand", r.id.as_str(), r.command), &b)
}

fn approval(b: &mut String, v: &View<'_>) {
    let asked = v.events.iter().find_map(|e| match &e.data {
        EventData::ApprovalRequested(a) => Some(a),
        _ => None,
    });
    if v.request.approval.is_none() && asked.is_none() && v.approvals.is_empty() {
        return;
    }
    b.push_str("<h2>Approval</h2>\n<table>\n");
    if let Some(p) = &v.request.approval {
        let who: Vec<String> = p.approvers.iter().map(ToString::to_string).collect();
        row(b, "approvers", &format!("{} ({} needed)", who.join(", "), p.count));
    }
    if let Some(rule) = asked.and_then(|a| a.rule.as_deref()) {
        row(b, "rule", rule);
    }
    for a in v.approvals {
        let reason = a.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        row(
            b,
            &format_ms(a.at),
            &format!("{} {} via {}{reason}", a.approver, a.decision, a.surface),
        );
    }
    b.push_str("</table>\n");
}

fn events(b: &mut String, v: &View<'_>) {
    b.push_str("<h2>Steps</h2>\n<table>\n");
    for e in v.events.iter().filter(|e| e.kind != EventKind::Output) {
        b.push_str(&format!(
            "<tr><td class=\"muted\">{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&format_ms(e.at)),
            escape(e.kind.as_str()),
            escape(&e.message)
        ));
    }
    b.push_str("</table>\n");
}

fn outputs(b: &mut String, v: &View<'_>) {
    let outputs: Vec<&Event> = v.events.iter().filter(|e| e.kind == EventKind::Output).collect();
    if outputs.is_empty() {
        return;
    }
    b.push_str("<h2>Output</h2>\n");
    for e in outputs {
        b.push_str(&format!(
            "<p class=\"muted\">{}</p>\n<pre>{}</pre>\n",
            escape(&format_ms(e.at)),
            escape(&e.message)
        ));
        let links: Vec<String> = e
            .data
            .links()
            .iter()
            .filter(|l| http_url(&l.url))
            .map(|l| {
                format!(
                    "<a href=\"{}\" rel=\"noreferrer noopener\">{}</a>",
                    escape(&l.url),
                    escape(&l.label)
                )
            })
            .collect();
        if !links.is_empty() {
            b.push_str(&format!("<p>{}</p>\n", links.join(" · ")));
        }
        if let Some(file) = e.data.attachment() {
            b.push_str(&format!(
                "<p><img src=\"{}/{}\" alt=\"{}\"></p>\n",
                escape(v.files),
                escape(&file.id),
                escape(&file.title)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_the_style_is_the_hashed_one() {
        assert_eq!(
            escape(r#"<script>alert('x')</script>&"#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
        assert!(expired(Some("r-<b>")).contains("request r-&lt;b&gt;"));
        assert!(CSP.contains("style-src 'sha256-") && !CSP.contains("script-src"));
        assert!(!http_url("javascript:alert(1)"));
    }
}
