use std::fmt;

/// A DNS-1123 label: what Kubernetes accepts as a namespace or object name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name cannot be empty")]
    Empty,
    #[error("'{0}' is {1} characters long; names are at most 63")]
    TooLong(String, usize),
    #[error(
        "'{0}' is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. checkout-preview)"
    )]
    Invalid(String),
}

impl Name {
    pub const MAX_LEN: usize = 63;

    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(NameError::TooLong(s.to_owned(), s.len()));
        }
        let bytes = s.as_bytes();
        let ok_inner = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !ok_inner || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(NameError::Invalid(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by `Name` (tiers, users, groups) be looked up with a plain `&str`; the
/// order and equality are those of the string, so this is sound.
impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns1123_labels() {
        for ok in ["a", "checkout-preview", "x1", "1x", &"a".repeat(63)] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert!(matches!(Name::parse(&"a".repeat(64)), Err(NameError::TooLong(_, 64))));
        for bad in ["-a", "a-", "Upper", "a_b", "a.b", "é"] {
            assert!(matches!(Name::parse(bad), Err(NameError::Invalid(_))), "{bad}");
        }
    }
}
