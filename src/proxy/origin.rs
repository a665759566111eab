//! Where a link lives. Browsers keep cookies, storage and service workers apart by origin,
//! so a link on deckhand's own origin (`{public_url}/p/{token}/`) shares all of them with
//! deckhand and with every other link; only path scoping of what crosses the proxy (see
//! `headers`) keeps them apart there. With `server.proxy_domain` set, each link is an origin
//! of its own, `{scheme}://{token}.{proxy_domain}/`, and the browser does the separating.

use axum::http::{HeaderMap, header};

use crate::configuration::ServerConfig;

/// What the Host of a request names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Host {
    /// deckhand itself (or no proxy domain is configured).
    Deckhand,
    /// `{token}.{proxy_domain}`: the link with this token, on its own origin.
    Link(String),
    /// Under the proxy domain but not a link's name (`a.b.{proxy_domain}`).
    Unknown,
}

/// Empty, or a DNS name (letters, digits, hyphens; dots between labels) with an optional
/// `:port`, as `server.proxy_domain` must be.
pub fn valid_proxy_domain(domain: &str) -> bool {
    if domain.is_empty() {
        return true;
    }
    let (name, port) = match domain.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (domain, None),
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 200 && name.split('.').all(label_ok) && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// The configured proxy domain without its port, lower-case; `None` when links are
/// path-based.
fn domain_name(server: &ServerConfig) -> Option<String> {
    let d = server.proxy_domain.trim();
    if d.is_empty() {
        return None;
    }
    let name = d.rsplit_once(':').map_or(d, |(name, _)| name);
    Some(name.to_ascii_lowercase())
}

/// Whether links are served on origins of their own.
pub(super) fn own_origins(server: &ServerConfig) -> bool {
    domain_name(server).is_some()
}

/// The URL handed out for a link with this token.
pub fn link_url(server: &ServerConfig, token: &str) -> String {
    let public = server.public_url.trim_end_matches('/');
    if !own_origins(server) {
        return format!("{public}/p/{token}/");
    }
    let scheme = public.split_once("://").map_or("https", |(scheme, _)| scheme);
    let domain = server.proxy_domain.trim().to_ascii_lowercase();
    format!("{scheme}://{token}.{domain}/")
}

/// The path in front of `/p/{token}` as browsers see it: the path of `public_url`, without
/// its trailing slash (`""` when deckhand is at the root).
pub(super) fn public_path(server: &ServerConfig) -> String {
    let rest = server
        .public_url
        .split_once("://")
        .map_or(server.public_url.as_str(), |(_, rest)| rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    // Cut at a query or fragment, and at what could end a cookie attribute.
    let path = path.split(['?', '#', ';']).next().unwrap_or_default();
    path.trim_end_matches('/').to_owned()
}

/// What the request's Host header names. HTTP/1.1 requires Host; a request without one is
/// deckhand's (and finds no link).
pub(super) fn host_of(server: &ServerConfig, headers: &HeaderMap) -> Host {
    let Some(domain) = domain_name(server) else {
        return Host::Deckhand;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return Host::Deckhand;
    };
    classify(&domain, host)
}

fn classify(domain: &str, host: &str) -> Host {
    if host.starts_with('[') {
        return Host::Deckhand; // an IPv6 literal is never a link's name
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let Some(label) = name.strip_suffix(domain).and_then(|l| l.strip_suffix('.')) else {
        return Host::Deckhand;
    };
    if label.is_empty() || label.contains('.') {
        Host::Unknown
    } else {
        Host::Link(label.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(public_url: &str, proxy_domain: &str) -> ServerConfig {
        let mut c = crate::configuration::Config::defaults().expect("defaults").server;
        c.public_url = public_url.into();
        c.proxy_domain = proxy_domain.into();
        c
    }

    #[test]
    fn proxy_domains_are_dns_names() {
        for ok in ["", "proxy.example.com", "p-1.example.com:8443", "localhost"] {
            assert!(valid_proxy_domain(ok), "{ok}");
        }
        for bad in [
            "https://proxy.example.com",
            "proxy.example.com/",
            "*.example.com",
            "a..b",
            "-a.b",
            "a.b:0",
            "a.b:x",
        ] {
            assert!(!valid_proxy_domain(bad), "{bad}");
        }
    }

    #[test]
    fn link_urls_and_prefixes() {
        let s = server("https://deckhand.example.com/ops/", "");
        assert_eq!(link_url(&s, "tok"), "https://deckhand.example.com/ops/p/tok/");
        assert_eq!(public_path(&s), "/ops");
        assert_eq!(public_path(&server("http://127.0.0.1:8080", "")), "");
        let s = server("http://deckhand.local:8080", "Proxy.Local:8443");
        assert_eq!(link_url(&s, "tok"), "http://tok.proxy.local:8443/");
    }

    #[test]
    fn hosts_name_links_only_one_label_under_the_domain() {
        let d = "proxy.example.com";
        assert_eq!(classify(d, "tok.proxy.example.com"), Host::Link("tok".into()));
        assert_eq!(classify(d, "TOK.Proxy.Example.com.:443"), Host::Link("tok".into()));
        assert_eq!(classify(d, "a.tok.proxy.example.com"), Host::Unknown);
        assert_eq!(classify(d, "proxy.example.com"), Host::Deckhand);
        assert_eq!(classify(d, "xproxy.example.com"), Host::Deckhand);
        assert_eq!(classify(d, "deckhand.example.com:8080"), Host::Deckhand);
        assert_eq!(classify(d, "[::1]:8080"), Host::Deckhand);
    }
}
