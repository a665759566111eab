//! Is this request from Slack? The v0 signature (HMAC-SHA256 over `v0:{ts}:{raw body}`),
//! a 5-minute timestamp window, and a memory of signatures already seen so a captured
//! request cannot be replayed inside that window.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use axum::http::HeaderMap;
use slack_morphism::{
    SlackSigningSecret,
    signature_verifier::{SlackEventSignatureVerifier, SlackEventSignatureVerifierError},
};

/// Slack's rule: refuse requests whose timestamp is more than five minutes off.
pub const MAX_SKEW_SECS: i64 = 300;

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
pub const RETRY_HEADER: &str = "x-slack-retry-num";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the timestamp is not a number")]
    BadTimestamp,
    #[error("the timestamp is more than {MAX_SKEW_SECS} s away from now")]
    Stale,
    #[error("this exact request was already received")]
    Replayed,
    #[error("the body is not UTF-8")]
    NotUtf8,
}

/// What a verified request told us about its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    First,
    /// Slack says it is redelivering (X-Slack-Retry-Num) a request it sent before.
    Retry,
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Verifies Slack request signatures. The clock is injectable so Slack's published worked
/// example (with its 2018 timestamp) can be checked exactly.
#[derive(Clone)]
pub struct RequestVerifier {
    inner: SlackEventSignatureVerifier,
    clock: Clock,
    seen: Arc<Mutex<Seen>>,
}

/// Signatures handled within the replay window, oldest first. Each is kept as 128 bits of
/// its HMAC (the signature was verified first, so those bits are the MAC's, not a chooser's),
/// and expired ones are dropped from the front as time moves on: O(1) a request. Scanning the
/// whole map once it held over 1,024 entries, as before, cost every command a pass over the
/// last ten minutes' signatures (issue 14's profile).
#[derive(Default)]
struct Seen {
    at: HashMap<u128, i64>,
    order: VecDeque<(i64, u128)>,
}

impl Seen {
    /// Records `key` at `now`; false if it was already there.
    fn insert(&mut self, key: u128, now: i64) -> bool {
        while let Some(&(at, old)) = self.order.front() {
            if now - at <= MAX_SKEW_SECS * 2 {
                break;
            }
            self.order.pop_front();
            if self.at.get(&old) == Some(&at) {
                self.at.remove(&old);
            }
        }
        if self.at.contains_key(&key) {
            return false;
        }
        self.at.insert(key, now);
        self.order.push_back((now, key));
        true
    }
}

/// 128 bits of a verified `v0=<64 hex>` signature; any other shape (none passes the check)
/// is hashed whole.
fn replay_key(signature: &str) -> u128 {
    signature
        .get(3..35)
        .and_then(|hex| u128::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| {
            use sha2::Digest;
            let d = sha2::Sha256::digest(signature.as_bytes());
            u128::from_be_bytes(d[..16].try_into().unwrap_or_default())
        })
}

impl std::fmt::Debug for RequestVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestVerifier(..)")
    }
}

impl RequestVerifier {
    pub fn new(signing_secret: &str) -> Self {
        Self::with_clock(signing_secret, Arc::new(|| jiff::Timestamp::now().as_second()))
    }

    /// `clock` returns the current Unix time in seconds.
    pub fn with_clock(signing_secret: &str, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        Self {
            inner: SlackEventSignatureVerifier::new(&SlackSigningSecret::new(signing_secret.to_owned())),
            clock,
            seen: Arc::default(),
        }
    }

    /// Checks the signature (constant time) and the timestamp window only; no replay memory.
    pub fn verify_signature(&self, signature: &str, timestamp: &str, body: &str) -> Result<(), VerifyError> {
        // slack-morphism compares the HMAC in constant time, but checks the timestamp against
        // the real clock with no way to pin it. It checks the signature first, so its
        // timestamp error means "signature good"; the window is then checked here against
        // our own (injectable) clock.
        match self.inner.verify(signature, body, timestamp) {
            Ok(()) | Err(SlackEventSignatureVerifierError::IncorrectOrExpiredTimestampError(_)) => {}
            Err(_) => return Err(VerifyError::BadSignature),
        }
        let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
        if ((self.clock)() - ts).abs() > MAX_SKEW_SECS {
            return Err(VerifyError::Stale);
        }
        Ok(())
    }

    /// Everything a request must pass before deckhand acts on it: headers present, body
    /// UTF-8, signature and window, and not a replay of a request already handled (Slack's
    /// own redeliveries carry X-Slack-Retry-Num and are let through: handling is idempotent).
    pub fn verify<'b>(&self, headers: &HeaderMap, body: &'b [u8]) -> Result<(&'b str, Delivery), VerifyError> {
        let signature = header(headers, SIGNATURE_HEADER)?;
        let timestamp = header(headers, TIMESTAMP_HEADER)?;
        let body = std::str::from_utf8(body).map_err(|_| VerifyError::NotUtf8)?;
        self.verify_signature(signature, timestamp, body)?;
        let delivery = if headers.contains_key(RETRY_HEADER) {
            Delivery::Retry
        } else {
            Delivery::First
        };
        let first_time = self.remember(signature);
        match (first_time, delivery) {
            (false, Delivery::First) => Err(VerifyError::Replayed),
            (true, _) => Ok((body, Delivery::First)),
            (false, Delivery::Retry) => Ok((body, Delivery::Retry)),
        }
    }

    /// Records a signature; false if it was already there. Entries older than the window
    /// are dropped: a replay that old fails the timestamp check anyway.
    fn remember(&self, signature: &str) -> bool {
        let now = (self.clock)();
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        seen.insert(replay_key(signature), now)
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::MissingHeader(name))
}

/// Signs like Slack does; tests and the benchmark use it to make valid requests.
pub fn sign(signing_secret: &str, timestamp: &str, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(signing_secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's worked example (also in tests/support/slack/fixtures/signature_vector.json).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn pinned(at: i64) -> RequestVerifier {
        RequestVerifier::with_clock(SECRET, Arc::new(move || at))
    }

    #[test]
    fn slacks_worked_example_verifies_with_the_clock_pinned() {
        assert_eq!(pinned(1531420618).verify_signature(SIG, TS, BODY), Ok(()));
        assert_eq!(sign(SECRET, TS, BODY), SIG);
    }

    #[test]
    fn any_change_fails() {
        let v = pinned(1531420618);
        let mut body = BODY.to_owned();
        body.push('x');
        assert_eq!(v.verify_signature(SIG, TS, &body), Err(VerifyError::BadSignature));
        assert_eq!(
            v.verify_signature(SIG, "1531420619", BODY),
            Err(VerifyError::BadSignature)
        );
        let other = RequestVerifier::with_clock("8f742231b10e8888abcd99yyyzzz85a6", Arc::new(|| 1531420618));
        assert_eq!(other.verify_signature(SIG, TS, BODY), Err(VerifyError::BadSignature));
        let flipped = SIG.replace("b503", "b504");
        assert_eq!(v.verify_signature(&flipped, TS, BODY), Err(VerifyError::BadSignature));
        assert_eq!(v.verify_signature("", TS, BODY), Err(VerifyError::BadSignature));
    }

    #[test]
    fn the_window_is_five_minutes_either_way() {
        assert_eq!(pinned(1531420618 + 300).verify_signature(SIG, TS, BODY), Ok(()));
        assert_eq!(pinned(1531420618 - 300).verify_signature(SIG, TS, BODY), Ok(()));
        assert_eq!(
            pinned(1531420618 + 301).verify_signature(SIG, TS, BODY),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            pinned(1531420618 - 301).verify_signature(SIG, TS, BODY),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            RequestVerifier::new(SECRET).verify_signature(SIG, TS, BODY),
            Err(VerifyError::Stale)
        );
    }

    #[test]
    fn the_replay_memory_forgets_only_what_the_window_refuses_anyway() {
        let mut seen = Seen::default();
        let (a, b) = (replay_key(SIG), replay_key(&format!("v0={:064x}", 1)));
        assert_ne!(a, b);
        assert!(seen.insert(a, 1000));
        assert!(!seen.insert(a, 1000 + MAX_SKEW_SECS * 2), "still within the window");
        assert!(seen.insert(b, 1000 + MAX_SKEW_SECS * 2));
        // Past the window (where the timestamp check refuses a replay) `a` is forgotten, `b` kept.
        assert!(seen.insert(a, 1001 + MAX_SKEW_SECS * 2));
        assert!(!seen.insert(b, 1001 + MAX_SKEW_SECS * 2));
        assert_eq!((seen.at.len(), seen.order.len()), (2, 2));
        // Thousands of entries cost no scan: the front is dropped as time moves on.
        for i in 0..5000_u128 {
            assert!(seen.insert(i << 64, 5000));
        }
        assert!(seen.insert(1, 5000 + MAX_SKEW_SECS * 2 + 1));
        assert_eq!(seen.at.len(), 1);
    }

    #[test]
    fn replays_are_refused_and_redeliveries_marked() {
        let v = pinned(1531420618);
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, SIG.parse().unwrap());
        h.insert(TIMESTAMP_HEADER, TS.parse().unwrap());
        assert_eq!(v.verify(&h, BODY.as_bytes()).map(|r| r.1), Ok(Delivery::First));
        assert_eq!(v.verify(&h, BODY.as_bytes()), Err(VerifyError::Replayed));
        h.insert(RETRY_HEADER, "1".parse().unwrap());
        assert_eq!(v.verify(&h, BODY.as_bytes()).map(|r| r.1), Ok(Delivery::Retry));
        h.remove(SIGNATURE_HEADER);
        assert_eq!(
            v.verify(&h, BODY.as_bytes()),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
    }
}
