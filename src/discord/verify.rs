//! Discord's request signatures: Ed25519 over timestamp + raw body with the application's
//! public key, plus a freshness check on the signed timestamp against replays.

use std::time::Duration;

use serenity::interactions_endpoint::Verifier;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the Discord public key must be 64 hex digits of a valid Ed25519 key")]
    BadKey,
    #[error("missing X-Signature-Ed25519 or X-Signature-Timestamp")]
    MissingHeaders,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("the timestamp is {0}s away from our clock")]
    Stale(u64),
}

#[derive(Clone)]
pub struct InteractionVerifier {
    inner: Verifier,
}

impl std::fmt::Debug for InteractionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InteractionVerifier(..)")
    }
}

impl InteractionVerifier {
    /// `public_key` as the developer portal shows it: 64 hex digits.
    pub fn new(public_key: &str) -> Result<Self, VerifyError> {
        let key = public_key.trim();
        if key.len() != 64 {
            return Err(VerifyError::BadKey);
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            let pair = key.get(2 * i..2 * i + 2).ok_or(VerifyError::BadKey)?;
            *b = u8::from_str_radix(pair, 16).map_err(|_| VerifyError::BadKey)?;
        }
        // serenity's `new` panics on bad input; `try_new` reports it.
        let inner = Verifier::try_new(bytes).map_err(|_| VerifyError::BadKey)?;
        Ok(Self { inner })
    }

    /// The signature alone, as Discord computes it (the fixture vector checks this).
    pub fn verify_signature(&self, signature: &str, timestamp: &str, body: &[u8]) -> Result<(), VerifyError> {
        self.inner
            .verify(signature, timestamp, body)
            .map_err(|()| VerifyError::BadSignature)
    }

    /// Signature and freshness: `now` is unix seconds.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: u64,
        max_skew: Duration,
    ) -> Result<(), VerifyError> {
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(VerifyError::MissingHeaders);
        };
        // The signature first: an unsigned request learns nothing, not even about the clock.
        self.verify_signature(signature, timestamp, body)?;
        let ts: u64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
        let skew = now.abs_diff(ts);
        if skew > max_skew.as_secs() {
            return Err(VerifyError::Stale(skew));
        }
        Ok(())
    }
}
