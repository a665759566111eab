//! Approve / Deny buttons: the decision and the request id, signed with deckhand's key, so a
//! click is honoured only on a button deckhand made, for that request, that decision and that
//! platform. Slack's action_id/value and Discord's custom_id are encodings of this.

use crate::{domain::RequestId, events::Verdict, signing::Signer};

/// 22 characters of HMAC (128 bits), like every other deckhand button signature.
pub const SIG_LEN: usize = 22;

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Verdict::Approve),
            "deny" => Some(Verdict::Deny),
            _ => None,
        }
    }
}

/// What is signed: the platform and the decision are part of it, so a Slack Approve cannot
/// be replayed on Discord or as Deny.
fn message(surface: &str, decision: Verdict, id: &RequestId) -> String {
    format!("{surface}:{}:{id}", decision.as_str())
}

/// The signature of a `decision` button for request `id` on `surface`.
pub fn sign(signer: &Signer, surface: &str, decision: Verdict, id: &RequestId) -> String {
    signer.sign(&message(surface, decision, id), SIG_LEN)
}

/// Whether `sig` is deckhand's signature of that button (of the right length, too).
pub fn verify(signer: &Signer, surface: &str, decision: Verdict, id: &RequestId, sig: &str) -> bool {
    sig.len() == SIG_LEN && signer.verify(&message(surface, decision, id), sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_bound_to_platform_decision_and_request() {
        let s = Signer::new(b"key");
        let id = RequestId::generate();
        let sig = sign(&s, "slack", Verdict::Approve, &id);
        assert!(verify(&s, "slack", Verdict::Approve, &id, &sig));
        assert!(!verify(&s, "discord", Verdict::Approve, &id, &sig));
        assert!(!verify(&s, "slack", Verdict::Deny, &id, &sig));
        assert!(!verify(&s, "slack", Verdict::Approve, &RequestId::generate(), &sig));
        assert!(!verify(&Signer::new(b"other"), "slack", Verdict::Approve, &id, &sig));
        // A prefix of the signature is refused, not checked as a shorter MAC.
        assert!(!verify(&s, "slack", Verdict::Approve, &id, &sig[..8]));
        assert!(!verify(&s, "slack", Verdict::Approve, &id, ""));
    }
}
