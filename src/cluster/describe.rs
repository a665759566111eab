//! Cluster text as deckhand shows it to people: a line per pod, the last events about an
//! app, one-line quotes of what the cluster said, and log lines with credentials hidden.
//! Status, rollout failures, exec and load tests all show pods and logs; they share these so
//! one redaction and one layout hold everywhere.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{Api, api::ListParams};

/// The longest piece of cluster text quoted in a failure, in characters.
const QUOTE_MAX: usize = 300;

/// Events shown about an app.
const APP_EVENTS: usize = 5;

/// Appends `pod LINE` for each of `pods` and the last five events about `app` (its
/// Deployment, ReplicaSets and pods), each on a line of its own under `last events:`.
pub async fn push_pods_and_events(out: &mut String, client: &kube::Client, ns: &str, app: &str, pods: &[Pod]) {
    for p in pods {
        out.push_str(&format!("\n  pod {}", pod_line(p)));
    }
    let events = app_events(client, ns, app).await;
    if !events.is_empty() {
        out.push_str("\nlast events:");
        for e in events {
            out.push_str(&format!("\n  {e}"));
        }
    }
}

pub fn pod_line(p: &Pod) -> String {
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_else(|| "Unknown".into());
    let restarts: i32 = status
        .container_statuses
        .as_ref()
        .map(|c| c.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0);
    let waiting = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find_map(|c| c.state?.waiting);
    let age =
        p.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| {
                crate::domain::HumanDuration::from_secs(
                    (jiff::Timestamp::now().as_second() - t.0.as_second()).max(1) as u64
                )
            })
            .map(|d| format!(", age {d}"))
            .unwrap_or_default();
    match waiting {
        Some(w) => format!(
            "{name}: {phase}, {} ({}), restarts {restarts}{age}",
            w.reason.unwrap_or_default(),
            w.message.unwrap_or_default()
        ),
        None => format!("{name}: {phase}, restarts {restarts}{age}"),
    }
}

/// The newest `APP_EVENTS` events in `ns` about `app` or an object named after it (`app-…`:
/// its ReplicaSets and pods), oldest first.
async fn app_events(client: &kube::Client, ns: &str, app: &str) -> Vec<String> {
    let prefix = format!("{app}-");
    let about = |name: &str| name == app || name.starts_with(&prefix);
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut events: Vec<Event> = api
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref().is_some_and(&about))
        .collect();
    events.sort_by_key(event_time);
    let skip = events.len().saturating_sub(APP_EVENTS);
    events
        .iter()
        .skip(skip)
        .map(|e| {
            format!(
                "{} {} {}/{}: {}",
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.involved_object.kind.clone().unwrap_or_default().to_lowercase(),
                e.involved_object.name.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            )
        })
        .collect()
}

pub(super) fn event_time(e: &Event) -> Option<jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Cluster text fit to quote in one line of a failure: control characters (newlines too)
/// become spaces, and past `QUOTE_MAX` characters it is cut with an ellipsis.
pub(super) fn quote(text: &str) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(QUOTE_MAX) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Hides values that look like credentials (`password=...`, `token: ...`, bearer tokens)
/// before log lines leave the cluster.
pub fn redact(text: &str) -> String {
    use std::sync::LazyLock;
    static SECRET: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#"(?i)((?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|authorization)["']?\s*[=:]\s*["']?)(?:(?:bearer|basic|digest|token|negotiate)\s+)?[^\s"',;]+"#,
        )
        .expect("static regex")
    });
    // A credential after its scheme with no key before it ("curl -H 'Bearer abc…'").
    static SCHEME_CREDENTIALS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}").expect("static regex")
    });
    static URL_CREDENTIALS: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"(://[^/\s:@]+:)[^@\s/]+@").expect("static regex"));
    let t = SECRET.replace_all(text, "${1}[redacted]");
    let t = SCHEME_CREDENTIALS.replace_all(&t, "${1}[redacted]");
    URL_CREDENTIALS.replace_all(&t, "${1}[redacted]@").into_owned()
}

#[cfg(test)]
mod tests {
    use super::{quote, redact};

    #[test]
    fn quotes_are_one_line_and_short() {
        assert_eq!(quote(" a\nb\u{1b}[31m "), "a b [31m");
        let long = quote(&"é".repeat(1000));
        assert_eq!(long.chars().count(), super::QUOTE_MAX + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn redacts_credentials() {
        let logs = "connecting with password=hunter2 and API_KEY: abc123\nAuthorization: Bearer eyJhbGci.x.y\nurl postgres://app:s3cret@db:5432/x\nplain line\nAuthorization: Basic dXNlcjpodW50ZXIy\nPGPASSWORD=pgs3cret psql\ncurl -H 'Bearer zzTOPSECRETzz'";
        let r = redact(logs);
        for secret in [
            "hunter2",
            "abc123",
            "eyJhbGci",
            "s3cret",
            "dXNlcjpodW50ZXIy",
            "pgs3cret",
            "zzTOPSECRETzz",
        ] {
            assert!(!r.contains(secret), "{secret} leaked: {r}");
        }
        assert!(
            r.contains("password=[redacted]") && r.contains("plain line") && r.contains("postgres://app:[redacted]@db"),
            "{r}"
        );
    }
}
