use std::{fmt, sync::LazyLock};

use regex::Regex;

/// A container image reference (`[registry/]repository[:tag][@digest]`), following the
/// grammar of the distribution reference spec that container runtimes use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error(
        "'{0}' is not an image reference: expected registry/repository:tag or @sha256:digest (e.g. ghcr.io/acme/shop:1.4.2)"
    )]
    Invalid(String),
    #[error("'{0}' is longer than 255 characters")]
    TooLong(String),
}

static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?$")
        .expect("static regex")
});
static PATH_COMPONENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("static regex"));
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\w][\w.-]{0,127}$").expect("static regex"));
static DIGEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$").expect("static regex")
});

pub const DEFAULT_REGISTRY: &str = "docker.io";

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let invalid = || ImageError::Invalid(s.to_owned());
        if s.len() > 255 {
            return Err(ImageError::TooLong(s.to_owned()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) if DIGEST.is_match(d) => (r, Some(d.to_owned())),
            Some(_) => return Err(invalid()),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !TAG.is_match(tag) {
                    return Err(invalid());
                }
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        let mut parts: Vec<&str> = name.split('/').collect();
        // The first component names a registry only if it looks like a host, as docker decides.
        let registry =
            if parts.len() > 1 && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost") {
                let domain = parts.remove(0);
                if !DOMAIN.is_match(domain) {
                    return Err(invalid());
                }
                domain.to_owned()
            } else {
                DEFAULT_REGISTRY.to_owned()
            };
        if parts.is_empty() || !parts.iter().all(|p| PATH_COMPONENT.is_match(p)) {
            return Err(invalid());
        }
        let mut repository = parts.join("/");
        if registry == DEFAULT_REGISTRY && parts.len() == 1 {
            repository = format!("library/{repository}");
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// A reference that can point at different bytes tomorrow: no digest, and a tag that is
    /// missing (implicitly `latest`) or `latest` itself.
    pub fn is_mutable(&self) -> bool {
        self.digest.is_none() && matches!(self.tag.as_deref(), None | Some("latest"))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let i = ImageRef::parse("nginx").unwrap();
        assert_eq!(i.to_string(), "docker.io/library/nginx");
        assert!(i.is_mutable());
        let i = ImageRef::parse("ghcr.io/acme/shop:1.4.2").unwrap();
        assert_eq!(
            (i.registry(), i.repository(), i.tag()),
            ("ghcr.io", "acme/shop", Some("1.4.2"))
        );
        assert!(!i.is_mutable());
        let i = ImageRef::parse("localhost:5000/app:latest").unwrap();
        assert_eq!(i.registry(), "localhost:5000");
        assert!(i.is_mutable());
        let d = format!("registry.internal/team/app@sha256:{}", "a".repeat(64));
        let i = ImageRef::parse(&d).unwrap();
        assert!(!i.is_mutable());
        assert_eq!(i.to_string(), d);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "UPPER/app",
            "app:",
            "app:-x",
            "a//b",
            "app@sha256:zz",
            "ghcr.io/",
            "-x/app",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
