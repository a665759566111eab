//! Which headers cross a proxy link, each way.
//!
//! End-to-end headers pass; hop-by-hop ones never do. Credentials never do, either way: the
//! request goes to the Kubernetes API server with deckhand's own credential, so a caller's
//! `Authorization` or `Impersonate-*` would be read as deckhand's (or as a request to act as
//! someone else), and identity headers that front proxies set (`X-Remote-*`,
//! `X-Forwarded-User`) would let a caller claim to be anyone to the app.
//!
//! Cookies: deckhand's own (all named `deckhand*`) are for deckhand and never reach an app.
//! On deckhand's origin (no `server.proxy_domain`) an app's `Set-Cookie` is scoped to its
//! link's path, and the headers that act on the whole origin (`Service-Worker-Allowed`,
//! `Clear-Site-Data`) are dropped. On a link's own origin the browser separates links; only
//! `Domain` is dropped there, so an app cannot share a cookie with its sibling origins.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that are deckhand's or the API server's business: the kube client sets its own
/// Host and credentials.
const OWN: &[&str] = &["host", "authorization"];

/// Identity headers that front proxies set for the app behind them.
const IDENTITY: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-groups",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
];

/// Prefixes of credential headers: Kubernetes impersonation and request-header
/// authentication, oauth2-proxy's identity headers, and deckhand's own.
const CREDENTIAL_PREFIXES: &[&str] = &["impersonate-", "x-remote-", "x-auth-request-", "x-deckhand-"];

/// Response headers that act on the whole origin, dropped when links share deckhand's.
const ORIGIN_WIDE: &[&str] = &["service-worker-allowed", "clear-site-data"];

/// Where the link is served, which decides how far its cookies may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scope {
    /// On deckhand's origin, under this path (`/p/{token}` behind any public prefix).
    Path(String),
    /// On an origin of its own.
    Origin,
}

/// The caller's headers, as the API server (and the app behind it) gets them.
pub(super) fn to_upstream(from: &HeaderMap, to: &mut HeaderMap) {
    let mut cookies = Vec::new();
    for (name, value) in end_to_end(from) {
        if name == header::COOKIE {
            cookies.extend(value.to_str().ok().map(apps_cookies));
        } else {
            to.append(name.clone(), value.clone());
        }
    }
    let cookies: Vec<String> = cookies.into_iter().filter(|c| !c.is_empty()).collect();
    if let Ok(v) = HeaderValue::from_str(&cookies.join("; "))
        && !cookies.is_empty()
    {
        to.insert(header::COOKIE, v);
    }
}

/// The app's answer headers, as the caller gets them.
pub(super) fn to_caller(from: &HeaderMap, to: &mut HeaderMap, scope: &Scope) {
    for (name, value) in end_to_end(from) {
        if matches!(scope, Scope::Path(_)) && ORIGIN_WIDE.contains(&name.as_str()) {
            continue;
        }
        if name == header::SET_COOKIE {
            let scoped = value.to_str().ok().and_then(|c| scoped_set_cookie(c, scope));
            if let Some(v) = scoped.and_then(|c| HeaderValue::from_str(&c).ok()) {
                to.append(name.clone(), v);
            }
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// The headers that may cross at all: not hop-by-hop, not named by Connection, not a
/// credential.
fn end_to_end(from: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    from.iter().filter(move |(name, _)| {
        let n = name.as_str();
        !(HOP_BY_HOP.contains(&n) || OWN.contains(&n) || is_credential(n) || named.iter().any(|c| c == n))
    })
}

fn is_credential(name: &str) -> bool {
    IDENTITY.contains(&name) || CREDENTIAL_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// deckhand names every cookie it sets `deckhand*` (`__Host-`/`__Secure-` prefixed or not).
fn is_deckhands(cookie_name: &str) -> bool {
    let n = cookie_name.trim().to_ascii_lowercase();
    let n = n
        .strip_prefix("__host-")
        .or_else(|| n.strip_prefix("__secure-"))
        .unwrap_or(&n);
    n.starts_with("deckhand")
}

/// A Cookie header without deckhand's cookies.
fn apps_cookies(header: &str) -> String {
    header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !is_deckhands(pair.split('=').next().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A Set-Cookie value with `Domain` removed and, on deckhand's origin, `Path` moved under
/// the link. A cookie without Path gets the browser's default path, the directory of the
/// request, which is inside the link already. `None`: not passed on (deckhand's name).
fn scoped_set_cookie(value: &str, scope: &Scope) -> Option<String> {
    let mut parts = value.split(';');
    let pair = parts.next()?.trim();
    if pair.is_empty() || is_deckhands(pair.split('=').next().unwrap_or_default()) {
        return None;
    }
    let mut out = vec![pair.to_owned()];
    for attr in parts.map(str::trim).filter(|a| !a.is_empty()) {
        let (key, val) = attr.split_once('=').unwrap_or((attr, ""));
        match (key.trim().to_ascii_lowercase().as_str(), scope) {
            ("domain", _) => {}
            ("path", Scope::Path(prefix)) => {
                // A Path not starting with `/` means the default path (RFC 6265 5.2.4).
                if val.trim().starts_with('/') {
                    out.push(format!("Path={prefix}{}", val.trim()));
                }
            }
            _ => out.push(attr.to_owned()),
        }
    }
    Some(out.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        m
    }

    fn names(m: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = m.keys().map(HeaderName::as_str).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn drops_hop_by_hop_own_and_credential_headers() {
        let from = map(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("authorization", "Bearer t"),
            ("impersonate-user", "admin"),
            ("x-remote-group", "system:masters"),
            ("x-forwarded-user", "root"),
            ("host", "deckhand"),
            ("x-deckhand-whatever", "1"),
            ("content-type", "application/json"),
            ("x-custom", "kept"),
        ]);
        let mut to = HeaderMap::new();
        to_upstream(&from, &mut to);
        assert_eq!(names(&to), ["content-type", "x-custom"]);
        let mut to = HeaderMap::new();
        to_caller(&from, &mut to, &Scope::Origin);
        assert_eq!(names(&to), ["content-type", "x-custom"]);
    }

    #[test]
    fn cookies_for_the_app_only() {
        let from = map(&[
            ("cookie", "deckhand_shell=a; x=1"),
            ("cookie", "__Secure-Deckhand=b;y=2"),
        ]);
        let mut to = HeaderMap::new();
        to_upstream(&from, &mut to);
        assert_eq!(to.get_all("cookie").iter().collect::<Vec<_>>(), ["x=1; y=2"]);
    }

    #[test]
    fn set_cookie_is_scoped() {
        let path = Scope::Path("/p/tok".into());
        let s = |v: &str, scope: &Scope| scoped_set_cookie(v, scope);
        assert_eq!(s("a=1; Path=/; Domain=x", &path).as_deref(), Some("a=1; Path=/p/tok/"));
        assert_eq!(s("a=1; path=x; HttpOnly", &path).as_deref(), Some("a=1; HttpOnly"));
        assert_eq!(
            s("a=1; Path=/; Domain=x", &Scope::Origin).as_deref(),
            Some("a=1; Path=/")
        );
        assert_eq!(s("deckhand_shell=1", &Scope::Origin), None);
        let from = map(&[("service-worker-allowed", "/"), ("clear-site-data", "*")]);
        let mut to = HeaderMap::new();
        to_caller(&from, &mut to, &path);
        assert!(to.is_empty());
    }
}
