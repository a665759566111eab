//! Prometheus text exposition, written by hand: three families do not need a registry.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex};

const BUCKETS: &[f64] = &[0.005, 0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    action_seconds: Mutex<BTreeMap<(String, String), Histogram>>,
    approval_wait: Mutex<Histogram>,
}

impl Metrics {
    pub fn action_finished(&self, action: &str, outcome: &str, seconds: f64) {
        if let Ok(mut m) = self.action_seconds.lock() {
            m.entry((action.to_owned(), outcome.to_owned()))
                .or_default()
                .observe(seconds);
        }
    }

    pub fn approval_granted(&self, waited_seconds: f64) {
        if let Ok(mut h) = self.approval_wait.lock() {
            h.observe(waited_seconds);
        }
    }

    /// `counts` are (command, state, n) from the store, so every replica reports the same
    /// totals for the whole installation.
    /// `grouped` is (group commits, requests they stored) on this replica; `handoffs` the
    /// new requests this replica's deliverer took without a poll.
    pub fn render(
        &self,
        counts: &[(String, String, i64)],
        deliveries: &[(String, String, i64)],
        grouped: (u64, u64),
        handoffs: u64,
    ) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP deckhand_store_group_commits_total Transactions that stored new requests on this replica.\n",
        );
        out.push_str("# TYPE deckhand_store_group_commits_total counter\n");
        let _ = writeln!(out, "deckhand_store_group_commits_total {}", grouped.0);
        out.push_str("# HELP deckhand_store_grouped_requests_total Requests those transactions stored.\n");
        out.push_str("# TYPE deckhand_store_grouped_requests_total counter\n");
        let _ = writeln!(out, "deckhand_store_grouped_requests_total {}", grouped.1);
        out.push_str(
            "# HELP deckhand_outbox_handoffs_total New chat requests handed to this replica's deliverer without a poll.\n",
        );
        out.push_str("# TYPE deckhand_outbox_handoffs_total counter\n");
        let _ = writeln!(out, "deckhand_outbox_handoffs_total {handoffs}");
        out.push_str("# HELP deckhand_deliveries Chat deliveries in the outbox by surface and state (pending, delivered, failed).\n");
        out.push_str("# TYPE deckhand_deliveries gauge\n");
        for (surface, state, n) in deliveries {
            let _ = writeln!(
                out,
                "deckhand_deliveries{{surface=\"{}\",state=\"{}\"}} {n}",
                escape(surface),
                escape(state)
            );
        }
        out.push_str("# HELP deckhand_requests Requests in the store by command and state.\n");
        out.push_str("# TYPE deckhand_requests gauge\n");
        for (command, state, n) in counts {
            let _ = writeln!(
                out,
                "deckhand_requests{{command=\"{}\",state=\"{state}\"}} {n}",
                escape(command)
            );
        }
        out.push_str("# HELP deckhand_action_duration_seconds Time actions took on this replica.\n");
        out.push_str("# TYPE deckhand_action_duration_seconds histogram\n");
        if let Ok(m) = self.action_seconds.lock() {
            for ((action, outcome), h) in m.iter() {
                h.render(
                    &mut out,
                    "deckhand_action_duration_seconds",
                    &format!("action=\"{}\",outcome=\"{outcome}\"", escape(action)),
                );
            }
        }
        out.push_str("# HELP deckhand_approval_wait_seconds Time from request to final approval.\n");
        out.push_str("# TYPE deckhand_approval_wait_seconds histogram\n");
        if let Ok(h) = self.approval_wait.lock() {
            h.render(&mut out, "deckhand_approval_wait_seconds", "");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
