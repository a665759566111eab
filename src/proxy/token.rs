//! Link tokens: random, shown once, stored only as a SHA-256 digest.

use sha2::{Digest, Sha256};

/// 26 characters of a 32-letter alphabet: 130 random bits.
const TOKEN_LEN: usize = 26;

pub fn new_token() -> String {
    crate::domain::new_token(TOKEN_LEN)
}

/// The id people use to name a link (`proxy close px-...`); it grants nothing.
pub fn new_link_id() -> String {
    format!("px-{}", crate::domain::new_token(8))
}

/// Lower-case hex SHA-256. Lookups go by this digest, so the database index compares
/// digests, never a prefix of the secret a caller is guessing.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_to_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), TOKEN_LEN);
        assert_ne!(a, b);
        let h = hash_token("abc");
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
