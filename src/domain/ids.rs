use std::fmt;

/// Request ids are short enough to type in chat (`r-3kq8m2xz7d`) and random enough that
/// replicas never collide in practice; the primary key catches the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RequestId(String);

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `len` characters of Crockford base32 from the OS random source.
pub fn new_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    // The OS RNG failing is not recoverable and not caused by input.
    getrandom::fill(&mut bytes).expect("operating system random source");
    bytes.iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect()
}

impl RequestId {
    pub fn generate() -> Self {
        Self(format!("r-{}", new_token(10)))
    }

    /// Accepts what a person pastes: `r-abc…`, any case, surrounding spaces.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let body = s.strip_prefix("r-")?;
        (!body.is_empty() && body.len() <= 32 && body.bytes().all(|b| ALPHABET.contains(&b))).then_some(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
