//! `?watch=1`: newline-delimited watch events from a resourceVersion, with selectors,
//! bookmarks, sendInitialEvents, timeoutSeconds and 410 Gone for compacted history.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::api::{Params, Shared, Target, error_response, is_true, selectors};
use super::resources::ResourceDef;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::WatchEvent;
use super::table;
use super::util;

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut s = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    s.push(b'\n');
    Bytes::from(s)
}

fn bookmark(rd: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": rd.kind, "apiVersion": rd.api_version(), "metadata": meta}),
    )
}

struct WatchFilter {
    rd: &'static ResourceDef,
    key: String,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    /// `kubectl get -w` asks for Tables: each event's object is then a one-row Table.
    as_table: bool,
}

impl WatchFilter {
    fn matches(&self, o: &Value) -> bool {
        self.labels.matches_object(o) && self.fields.matches(o)
    }

    fn event(&self, kind: &str, object: &Value) -> Bytes {
        if self.as_table {
            let rv = util::str_at(object, "metadata.resourceVersion").parse().unwrap_or(0);
            event_line(kind, &table::table(self.rd, std::slice::from_ref(object), rv))
        } else {
            event_line(kind, object)
        }
    }

    /// The line a watcher sees for a store event, if any. An object that stops matching the
    /// selectors is reported as DELETED, one that starts matching as ADDED.
    fn line(&self, ev: &WatchEvent) -> Option<Bytes> {
        if ev.key != self.key || self.namespace.as_ref().is_some_and(|ns| *ns != ev.namespace) {
            return None;
        }
        let now = self.matches(&ev.object);
        if ev.kind != "MODIFIED" {
            return now.then(|| self.event(ev.kind, &ev.object));
        }
        let before = ev.old.as_ref().map_or(now, |o| self.matches(o));
        match (before, now) {
            (true, true) => Some(self.event("MODIFIED", &ev.object)),
            (false, true) => Some(self.event("ADDED", &ev.object)),
            (true, false) => Some(self.event("DELETED", &ev.object)),
            (false, false) => None,
        }
    }
}

pub(super) fn watch(shared: Arc<Shared>, t: &Target, params: &Params, as_table: bool) -> Response {
    let Ok((labels, fields)) = selectors(params) else {
        return error_response(&ApiError::bad_request("invalid selector"));
    };
    let rd = t.rd;
    let filter = WatchFilter {
        rd,
        as_table,
        key: rd.key(),
        namespace: t.namespace.clone(),
        labels,
        fields: match &t.name {
            // The legacy /watch/.../{name} form watches one object.
            Some(n) => {
                let mut f = fields;
                f.0.push(("metadata.name".into(), true, n.clone()));
                f
            }
            None => fields,
        },
    };
    let bookmarks = is_true(params, "allowWatchBookmarks");
    let send_initial = is_true(params, "sendInitialEvents");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let rv_param = params.get("resourceVersion").cloned().unwrap_or_default();

    let (initial, mut sub, start_rv) = {
        let st = shared.lock();
        let sub = st.tx.subscribe();
        let current = st.current_rv();
        let mut lines = Vec::new();
        let from_scratch = rv_param.is_empty() || rv_param == "0";
        if from_scratch || send_initial {
            for o in st.list(rd, filter.namespace.as_deref()) {
                if filter.matches(&o) {
                    lines.push(filter.event("ADDED", &o));
                }
            }
            if send_initial {
                lines.push(bookmark(rd, current, true));
            }
        } else {
            match rv_param.parse::<u64>() {
                Err(_) => {
                    let e = ApiError::bad_request(format!("invalid resource version: {rv_param:?}"));
                    return error_response(&e);
                }
                Ok(rv) => match st.history_since(rv) {
                    None => {
                        let e = ApiError::gone(format!("too old resource version: {rv} ({})", st.compacted_rv + 1));
                        lines.push(event_line("ERROR", &e.to_status()));
                    }
                    Some(evs) => lines.extend(evs.iter().filter_map(|e| filter.line(e))),
                },
            }
        }
        (lines, sub, current)
    };

    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut stop = shared.shutdown.subscribe();
    tokio::spawn(async move {
        let gone = initial
            .last()
            .is_some_and(|l| l.windows(14).any(|w| w == b"\"type\":\"ERROR\""));
        for l in initial {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut last_rv = start_rv;
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tx.closed() => break,
                _ = stop.changed() => break,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(bookmark(rd, last_rv, false)).await.is_err() {
                        break;
                    }
                }
                ev = sub.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= start_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some(line) = filter.line(&ev)
                            && tx.send(line).await.is_err()
                        {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::gone(format!("too old resource version: {last_rv}"));
                        let _ = tx.send(event_line("ERROR", &e.to_status())).await;
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
