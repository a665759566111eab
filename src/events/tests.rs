use serde_json::json;

use super::*;

fn load(kind: EventKind, message: &str, stored: serde_json::Value) -> EventData {
    EventData::load(kind, message, Some(&stored.to_string()))
}

#[test]
fn tagged_data_round_trips() {
    let all = [
        EventData::state(State::Queued, None, Some("approved (2 of 2); queued".into())),
        EventData::ApprovalRequested(ApprovalRequest {
            approvers: vec!["group:ops".into()],
            count: 2,
            rule: Some("tier is prod".into()),
            expires_at: Some(5),
            detail: None,
        }),
        EventData::Decision(Decision {
            approver: "olga".into(),
            decision: Verdict::Deny,
            reason: Some("freeze".into()),
            approvals: 0,
            needed: Some(2),
        }),
        EventData::Output(Output::fields(json!({"url": "https://x"})).to(Audience::Approvers)),
        EventData::Progress(Progress::default()),
    ];
    for data in all {
        let stored = serde_json::to_string(&data).unwrap();
        assert_eq!(EventData::load(data.kind(), "m", Some(&stored)), data, "{stored}");
    }
}

#[test]
fn output_keeps_the_action_fields_at_the_top_level() {
    let out = Output::fields(json!({"id": "p-1", "url": "https://x"}))
        .button(CommandButton::danger("Close link", "proxy close p-1".into()))
        .to(Audience::Requester);
    assert_eq!(
        serde_json::to_value(EventData::Output(out)).unwrap(),
        json!({
            "type": "output", "id": "p-1", "url": "https://x", "private": "requester",
            "buttons": [{"label": "Close link", "command": "proxy close p-1", "danger": true}],
        })
    );
}

#[test]
fn rows_from_before_the_tag_still_load() {
    assert_eq!(
        load(
            EventKind::State,
            "failed",
            json!({"state": "failed", "outcome": "boom"})
        ),
        EventData::state(State::Failed, Some("boom".into()), None)
    );
    // Older still: only the message named the state.
    assert_eq!(
        EventData::load(EventKind::State, "approved (1 of 1); queued", None),
        EventData::state(State::Queued, None, Some("approved (1 of 1); queued".into()))
    );
    assert_eq!(
        load(
            EventKind::Approval,
            "Waiting",
            json!({"approvers": ["group:ops"], "count": 2, "detail": null})
        ),
        EventData::ApprovalRequested(ApprovalRequest {
            approvers: vec!["group:ops".into()],
            count: 2,
            rule: None,
            expires_at: None,
            detail: None,
        })
    );
    assert_eq!(
        load(
            EventKind::Approval,
            "omar denied: change freeze",
            json!({"approver": "omar", "decision": "deny", "approvals": 0})
        ),
        EventData::Decision(Decision {
            approver: "omar".into(),
            decision: Verdict::Deny,
            reason: Some("change freeze".into()),
            approvals: 0,
            needed: None,
        })
    );
    let out = load(
        EventKind::Output,
        "link",
        json!({"url": "u", "private": true, "buttons": [{"label": "x", "command": "c"}, {"label": "broken"}]}),
    );
    let EventData::Output(out) = out else { panic!("{out:?}") };
    assert_eq!(out.private, Audience::Requester);
    assert_eq!(out.buttons.len(), 1, "malformed buttons are skipped");
    assert_eq!(out.fields, json!({"url": "u"}).as_object().unwrap().clone());
    assert_eq!(
        load(EventKind::Progress, "x", json!(null)),
        EventData::Progress(Progress::default())
    );
    assert_eq!(
        load(EventKind::Output, "x", json!({"private": "approvers", "stdout": "s"})).audience(),
        Audience::Approvers
    );
}

#[test]
fn redaction_keeps_only_the_audience() {
    let out = EventData::Output(Output::fields(json!({"url": "secret"})).to(Audience::Requester));
    assert_eq!(
        serde_json::to_value(out.redacted()).unwrap(),
        json!({"type": "output", "private": "requester"})
    );
}
