use std::fmt;

/// Request ids are short enough to copy in chat (`r-0pcx9k2m4f7hqa`), sort in the order they
/// were made, and are random enough after their time that replicas never collide in practice
/// (30 bits within one millisecond); the primary key catches the rest. Ids from before they
/// were ordered (`r-3kq8m2xz7d`) are still accepted.
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

/// Where [`ordered_token`]'s clock starts: 2024-01-01T00:00:00Z, in Unix milliseconds. Its
/// 40 bits of milliseconds last until 2058 and then wrap (ids stay unique, only their order
/// starts over).
const ORDERED_EPOCH_MS: i64 = 1_704_067_200_000;

/// 8 characters of the time in milliseconds, then `random` characters from the OS random
/// source: tokens that sort in the order they were made. Rows keyed by them (requests, their
/// events, deliveries and audit rows) land next to each other in the store's indexes, so
/// committing many new requests writes a few index pages instead of one per row per index
/// (issue 14: random keys made each group commit write about seven scattered pages per
/// request to the WAL).
pub fn ordered_token(random: usize) -> String {
    let ms = (crate::domain::now_ms() - ORDERED_EPOCH_MS).max(0) as u64 & ((1 << 40) - 1);
    let mut token: String = (0..8)
        .rev()
        .map(|i| ALPHABET[((ms >> (i * 5)) & 31) as usize] as char)
        .collect();
    token.push_str(&new_token(random));
    token
}

impl RequestId {
    pub fn generate() -> Self {
        Self(format!("r-{}", ordered_token(6)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_sort_in_the_order_they_were_made_and_both_shapes_parse() {
        let first = RequestId::generate();
        // The next millisecond at least: ids within one millisecond are ordered only by chance.
        let start = crate::domain::now_ms();
        while crate::domain::now_ms() == start {
            std::hint::spin_loop();
        }
        let second = RequestId::generate();
        assert!(first < second, "{first} then {second}");
        assert_eq!(first.as_str().len(), 16, "{first}");
        assert_eq!(RequestId::parse(first.as_str()), Some(first.clone()));
        assert_eq!(RequestId::parse(&first.as_str().to_uppercase()), Some(first));
        assert!(RequestId::parse("r-3kq8m2xz7d").is_some(), "ids from before stay valid");
        assert!(RequestId::parse("r-no!").is_none());
    }
}
