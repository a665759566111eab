//! The compact table a load test posts: this run, the previous run of the same target and
//! the change, errors by kind, and the verdict.

use std::time::Duration;

use crate::loadgen::{Report, Verdict, report::ms};

fn change(now: f64, before: f64) -> String {
    if before == 0.0 {
        return if now == 0.0 { "=".into() } else { "new".into() };
    }
    let pct = (now - before) / before * 100.0;
    if pct.abs() < 0.05 {
        "=".into()
    } else {
        format!("{pct:+.1}%")
    }
}

fn latency_row(name: &str, now: Duration, before: Option<Duration>) -> [String; 4] {
    [
        name.to_owned(),
        ms(now),
        before.map(ms).unwrap_or_else(|| "-".into()),
        before
            .map(|b| change(now.as_secs_f64(), b.as_secs_f64()))
            .unwrap_or_default(),
    ]
}

/// Errors by kind and status, e.g. `timeout 3, reset 1, HTTP 503 12`.
pub fn errors_by_kind(r: &Report) -> String {
    let mut parts: Vec<String> = r.errors.iter().map(|(k, n)| format!("{} {n}", k.as_str())).collect();
    parts.extend(
        r.status
            .iter()
            .filter(|(s, _)| **s >= 400)
            .map(|(s, n)| format!("HTTP {s} {n}")),
    );
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The table, in a code block so columns line up in chat.
pub fn table(title: &str, now: &Report, previous: Option<(&str, &Report)>, verdict: &Verdict) -> String {
    let before = previous.map(|(_, r)| r);
    let head = match previous {
        Some((id, _)) => format!("previous ({id})"),
        None => "previous".into(),
    };
    let mut rows = vec![["".to_owned(), "this run".to_owned(), head, "change".to_owned()]];
    rows.push([
        "rate".into(),
        format!("{:.1}/s", now.achieved_rate()),
        before
            .map(|b| format!("{:.1}/s", b.achieved_rate()))
            .unwrap_or_else(|| "-".into()),
        before
            .map(|b| change(now.achieved_rate(), b.achieved_rate()))
            .unwrap_or_default(),
    ]);
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        rows.push(latency_row(name, now.percentile(q), before.map(|b| b.percentile(q))));
    }
    rows.push(latency_row("max", now.max(), before.map(Report::max)));
    rows.push([
        "errors".into(),
        format!("{:.2}%", now.error_ratio() * 100.0),
        before
            .map(|b| format!("{:.2}%", b.error_ratio() * 100.0))
            .unwrap_or_else(|| "-".into()),
        before
            .map(|b| format!("{:+.2} pts", (now.error_ratio() - b.error_ratio()) * 100.0))
            .unwrap_or_default(),
    ]);
    rows.push([
        "requests".into(),
        now.total().to_string(),
        before.map(|b| b.total().to_string()).unwrap_or_else(|| "-".into()),
        String::new(),
    ]);
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("{title}\n```\n");
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("errors by kind: {}\n```\n", errors_by_kind(now)));
    out.push_str(&verdict.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_percentages() {
        assert_eq!(change(110.0, 100.0), "+10.0%");
        assert_eq!(change(90.0, 100.0), "-10.0%");
        assert_eq!(change(100.0, 100.0), "=");
        assert_eq!(change(5.0, 0.0), "new");
    }
}
