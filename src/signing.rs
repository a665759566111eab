//! Deckhand's own signatures, for values it hands to a chat platform and gets back (button
//! payloads): a click is only honoured if deckhand made the button.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// `len` characters of URL-safe base64 of HMAC-SHA256(key, message); 22 characters
    /// (128 bits) keep Discord's 100-character custom_id roomy.
    pub fn sign(&self, message: &str, len: usize) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(message.as_bytes());
        let mut s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        s.truncate(len);
        s
    }

    /// Constant-time check of a signature made by `sign` with the same length.
    pub fn verify(&self, message: &str, signature: &str) -> bool {
        let expected = self.sign(message, signature.len().max(16));
        crate::identity::constant_time_eq(expected.as_bytes(), signature.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::Signer;

    #[test]
    fn signs_and_refuses_changes() {
        let s = Signer::new(b"k");
        let sig = s.sign("approve:r-abc", 22);
        assert_eq!(sig.len(), 22);
        assert!(s.verify("approve:r-abc", &sig));
        assert!(!s.verify("approve:r-abd", &sig));
        assert!(!Signer::new(b"other").verify("approve:r-abc", &sig));
        assert!(!s.verify("approve:r-abc", &sig[..10]), "short signatures are refused");
    }
}
