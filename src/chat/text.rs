//! What deckhand says about approvals and to strangers, the same on every platform; the
//! platform's [`Markup`] escapes and mentions.

use super::Markup;
use crate::{
    domain::{State, format_ms, human_duration_ms},
    events::{ApprovalRequest, Decision, Verdict},
    store::ApprovalRecord,
};

/// The status of a request that succeeded once its output is in the thread: "finished in
/// 2s" (from start to finish; until `now`, Unix ms, when the record predates the finish).
/// The outcome is left out: the output reply says it, and an outcome is often the output
/// again (`whoami`), which the status would otherwise repeat.
pub fn finished(request: &crate::store::RequestRecord, now: i64) -> String {
    match request.started_at {
        Some(start) => format!(
            "finished in {}",
            human_duration_ms(request.finished_at.unwrap_or(now) - start)
        ),
        None => "finished".to_owned(),
    }
}

/// Whether the status message shows `finished` instead of the outcome: a success whose
/// output went to the thread.
pub fn shows_finished(state: State, output_shown: bool) -> bool {
    state == State::Succeeded && output_shown
}

/// "✅ olga approved (1 of 2)" or "🚫 olga denied: not now".
pub fn decision_summary(m: &dyn Markup, d: &Decision, needed: u32) -> String {
    let who = m.user(&d.approver);
    match d.decision {
        Verdict::Approve => format!("✅ {who} approved ({} of {})", d.approvals, d.needed.unwrap_or(needed)),
        Verdict::Deny => match d.reason.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => format!("🚫 {who} denied: {}", m.escape(r)),
            None => format!("🚫 {who} denied"),
        },
    }
}

/// The decisions stored for a request (the approvals table, in order) as typed decisions,
/// counting approvals as they came.
pub fn decisions(records: &[ApprovalRecord], needed: u32) -> Vec<Decision> {
    let mut approvals = 0;
    records
        .iter()
        .map(|r| {
            let decision = if r.decision == "approve" {
                approvals += 1;
                Verdict::Approve
            } else {
                Verdict::Deny
            };
            Decision {
                approver: r.approver.clone(),
                decision,
                reason: r.reason.clone(),
                approvals,
                needed: Some(needed),
            }
        })
        .collect()
}

/// The line a prompt nobody decided on ends with: it expired, or was cancelled.
pub fn closed_summary(m: &dyn Markup, state: State, outcome: Option<&str>) -> Option<String> {
    match state {
        State::Expired => Some("⌛ expired: nobody decided in time".to_owned()),
        State::Cancelled => Some(match outcome.filter(|o| !o.is_empty() && *o != "cancelled") {
            Some(o) => format!("✖️ cancelled: {}", m.escape(o)),
            None => "✖️ cancelled".to_owned(),
        }),
        _ => None,
    }
}

/// The lines of an approval prompt under "who asks for what": who may approve (mentioned),
/// which rule asked, when it expires, and the action's detail.
pub fn prompt_lines(m: &dyn Markup, ask: &ApprovalRequest) -> Vec<String> {
    let who: Vec<String> = ask.approvers.iter().map(|a| m.approver(a)).collect();
    let mut lines = vec![format!("Needs {} of {}.", ask.count, who.join(", "))];
    if let Some(rule) = &ask.rule {
        lines.push(format!("Asked because {}.", m.escape(rule)));
    }
    if let Some(t) = ask.expires_at {
        lines.push(format!("Expires {}.", format_ms(t)));
    }
    if let Some(d) = &ask.detail {
        lines.push(m.escape(d));
    }
    lines
}

/// What someone deckhand does not know is told; `identity` is how the configuration would
/// name them (`slack:U0123`), `group_hint` where a platform group could map them instead.
pub fn unknown_user(identity: &str, group_hint: &str) -> String {
    format!(
        "Sorry, deckhand does not know you yet, so it cannot run commands for you. Ask the platform ops team to add `{identity}` to the `identities` of your user in deckhand's configuration (or {group_hint} to a deckhand group)."
    )
}

/// A click on a button deckhand did not sign.
pub const FORGED_BUTTON: &str = "deckhand did not make this button (or it was altered), so nothing was done.";

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl Markup for Plain {
        fn escape(&self, text: &str) -> String {
            text.replace('<', "&lt;")
        }
        fn user(&self, name: &str) -> String {
            format!("@{name}")
        }
        fn group(&self, name: &str) -> Option<String> {
            (name == "ops").then(|| format!("@@{name}"))
        }
    }

    fn decision(approve: bool, approvals: i64, reason: Option<&str>) -> Decision {
        Decision {
            approver: "olga".into(),
            decision: if approve { Verdict::Approve } else { Verdict::Deny },
            reason: reason.map(str::to_owned),
            approvals,
            needed: Some(2),
        }
    }

    #[test]
    fn decisions_read_as_lines() {
        assert_eq!(
            decision_summary(&Plain, &decision(true, 1, None), 9),
            "✅ @olga approved (1 of 2)"
        );
        assert_eq!(
            decision_summary(&Plain, &decision(false, 0, Some("<not now>")), 2),
            "🚫 @olga denied: &lt;not now>"
        );
        assert_eq!(
            closed_summary(&Plain, State::Expired, None).as_deref(),
            Some("⌛ expired: nobody decided in time")
        );
        assert_eq!(
            closed_summary(&Plain, State::Cancelled, Some("cancelled")).as_deref(),
            Some("✖️ cancelled")
        );
        assert_eq!(closed_summary(&Plain, State::Queued, None), None);
    }

    #[test]
    fn the_prompt_names_approvers_rule_and_expiry() {
        let ask = ApprovalRequest {
            approvers: vec![
                "group:ops".into(),
                "group:dev".into(),
                "user:olga".into(),
                "everyone".into(),
            ],
            count: 2,
            rule: Some("tier is prod".into()),
            expires_at: Some(0),
            detail: Some("<b>".into()),
        };
        assert_eq!(
            prompt_lines(&Plain, &ask),
            [
                "Needs 2 of @@ops, group:dev, @olga, everyone.".to_owned(),
                "Asked because tier is prod.".to_owned(),
                format!("Expires {}.", format_ms(0)),
                "&lt;b>".to_owned(),
            ]
        );
    }
}
