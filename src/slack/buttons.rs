//! Approve / Deny buttons in Slack: the action_id names the decision and the value is
//! `approve.r-abc.SIGNATURE`, an encoding of the shared signature in `crate::chat::buttons`.

pub use crate::events::Verdict as Decision;
use crate::{chat::buttons as signed, domain::RequestId, signing::Signer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ButtonError {
    #[error("this button value was not made by deckhand")]
    Forged,
    #[error("this button value is malformed")]
    Malformed,
}

/// `approve.r-abc.SIGNATURE`
pub fn value(signer: &Signer, decision: Decision, id: &RequestId) -> String {
    format!(
        "{}.{id}.{}",
        decision.as_str(),
        signed::sign(signer, "slack", decision, id)
    )
}

/// Checks a clicked button's value against the action id Slack reports for the click; both
/// must name the same decision, so a signed Approve value cannot be replayed as Deny.
pub fn parse(signer: &Signer, action_id: &str, value: &str) -> Result<(Decision, RequestId), ButtonError> {
    let mut parts = value.splitn(3, '.');
    let (Some(d), Some(id), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ButtonError::Malformed);
    };
    let decision = Decision::parse(d).ok_or(ButtonError::Malformed)?;
    let id = RequestId::parse(id).ok_or(ButtonError::Malformed)?;
    if Decision::parse(action_id) != Some(decision) || !signed::verify(signer, "slack", decision, &id, sig) {
        return Err(ButtonError::Forged);
    }
    Ok((decision, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_refuse_changes() {
        let s = Signer::new(b"key");
        let id = RequestId::generate();
        let v = value(&s, Decision::Approve, &id);
        assert_eq!(parse(&s, "approve", &v), Ok((Decision::Approve, id.clone())));
        assert_eq!(parse(&s, "deny", &v), Err(ButtonError::Forged));
        let as_deny = v.replacen("approve", "deny", 1);
        assert_eq!(parse(&s, "deny", &as_deny), Err(ButtonError::Forged));
        assert_eq!(parse(&Signer::new(b"other"), "approve", &v), Err(ButtonError::Forged));
        let other = RequestId::generate();
        let moved = v.replace(id.as_str(), other.as_str());
        assert_eq!(parse(&s, "approve", &moved), Err(ButtonError::Forged));
        assert_eq!(parse(&s, "approve", "nonsense"), Err(ButtonError::Malformed));
        assert_eq!(
            parse(&s, "approve", "REPLACE-WITH-THE-SIGNED-VALUE-THE-BOT-PUT-ON-THE-BUTTON"),
            Err(ButtonError::Malformed)
        );
    }
}
