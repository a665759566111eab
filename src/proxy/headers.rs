//! Which headers cross a proxy link, each way.
//!
//! End-to-end headers pass; hop-by-hop ones never do. Credentials never do, either way: the
//! request goes to the Kubernetes API server with deckhand's own credential, so a caller's
//! `Authorization` or `Impersonate-*` would be read as deckhand's (or as a request to act as
//! someone else), and identity headers that front proxies set (`X-Remote-*`,
//! `X-Forwarded-User`) would let a caller claim to be anyone to the app.
//!
//! Cookies: deckhand's own (all named `deckhand*`) are for deckhand and never reach an app.
//! On deckhand's origin (no `server.proxy_domain`) every link shares one cookie jar, so an
//! app's `Set-Cookie` is scoped to its link's path **and** renamed with a prefix of its link
//! (`dhl-<10 hex>-NAME`, from a digest of the link's secret token); on the way in only the
//! cookies with this link's prefix pass, the prefix removed. A cookie that deckhand, another
//! link's app (`document.cookie = "sid=x; Path=/"`) or anyone else on the origin set never
//! reaches this link's app. `__Host-`/`__Secure-` names keep a `__Secure-` prefix in front,
//! so the browser still demands HTTPS for them (`__Host-` itself cannot be kept: it requires
//! `Path=/`); on the way in such a name passes only with that outer prefix. The headers that
//! act on the whole origin (`Service-Worker-Allowed`, `Clear-Site-Data`) are dropped too.
//! This separates honest apps; a hostile script on the shared origin can still read and
//! write whatever it finds there, which is why `server.proxy_domain` exists.
//!
//! On a link's own origin the browser separates links; only `Domain` is dropped there, so
//! an app cannot share a cookie with its sibling origins, and cookies pass unrenamed.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use sha2::{Digest, Sha256};

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
    /// On deckhand's origin: under `path` (`/p/{token}` behind any public prefix), its
    /// cookies named with `prefix` (see [`Scope::on_deckhands_origin`]).
    Path { path: String, prefix: String },
    /// On an origin of its own.
    Origin,
}

impl Scope {
    /// The scope of the link with `token`, served under `path` on deckhand's origin. The
    /// cookie prefix is a digest of the token, so nobody without the link can name its
    /// cookies, and it stays the same for the link's whole life.
    pub(super) fn on_deckhands_origin(path: String, token: &str) -> Self {
        let digest = Sha256::digest(format!("deckhand proxy link cookies\0{token}").as_bytes());
        let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        Scope::Path {
            path,
            prefix: format!("dhl-{hex}-"),
        }
    }
}

/// The caller's headers, as the API server (and the app behind it) gets them.
pub(super) fn to_upstream(from: &HeaderMap, to: &mut HeaderMap, scope: &Scope) {
    let mut cookies = Vec::new();
    for (name, value) in end_to_end(from) {
        if name == header::COOKIE {
            cookies.extend(value.to_str().ok().map(|c| apps_cookies(c, scope)));
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
        if matches!(scope, Scope::Path { .. }) && ORIGIN_WIDE.contains(&name.as_str()) {
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

/// Whether a cookie name carries one of the browser's prefixes (`__Host-`, `__Secure-`),
/// which browsers match case-insensitively.
fn browser_prefixed(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("__host-") || n.starts_with("__secure-")
}

/// The Cookie header the app gets: on its own origin everything but deckhand's cookies; on
/// deckhand's origin only the cookies named with the link's prefix, the prefix removed.
fn apps_cookies(header: &str, scope: &Scope) -> String {
    header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match scope {
                Scope::Origin => (!is_deckhands(name)).then(|| pair.to_owned()),
                Scope::Path { prefix, .. } => link_name(name.trim(), prefix).map(|n| format!("{n}={value}")),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The name an app gave a cookie that this link renamed (`[__Secure-]PREFIX NAME`), or
/// `None` for a cookie the link did not set.
fn link_name<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let outer = "__Secure-";
    let secure = name.get(..outer.len()).is_some_and(|p| p.eq_ignore_ascii_case(outer))
        && name[outer.len()..].starts_with(prefix);
    let rest = if secure { &name[outer.len()..] } else { name };
    let inner = rest.strip_prefix(prefix).filter(|n| !n.is_empty())?;
    // An app's `__Host-`/`__Secure-` cookie was sent over HTTPS only; so must its copy be.
    (secure || !browser_prefixed(inner)).then_some(inner)
}

/// The name a link's cookie has in the browser (see the module doc).
fn renamed(name: &str, prefix: &str) -> String {
    if browser_prefixed(name) {
        format!("__Secure-{prefix}{name}")
    } else {
        format!("{prefix}{name}")
    }
}

/// A Set-Cookie value with `Domain` removed and, on deckhand's origin, renamed with the
/// link's prefix and with `Path` moved under the link. A cookie without Path gets the
/// browser's default path, the directory of the request, which is inside the link already.
/// `None`: not passed on (deckhand's name).
fn scoped_set_cookie(value: &str, scope: &Scope) -> Option<String> {
    let mut parts = value.split(';');
    let pair = parts.next()?.trim();
    let (name, rest) = pair.split_once('=').unwrap_or((pair, ""));
    let name = name.trim();
    if pair.is_empty() || name.is_empty() || is_deckhands(name) {
        return None;
    }
    let pair = match scope {
        Scope::Path { prefix, .. } => format!("{}={rest}", renamed(name, prefix)),
        Scope::Origin => pair.to_owned(),
    };
    let mut out = vec![pair];
    for attr in parts.map(str::trim).filter(|a| !a.is_empty()) {
        let (key, val) = attr.split_once('=').unwrap_or((attr, ""));
        match (key.trim().to_ascii_lowercase().as_str(), scope) {
            ("domain", _) => {}
            ("path", Scope::Path { path: prefix, .. }) => {
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
        to_upstream(&from, &mut to, &Scope::Origin);
        assert_eq!(names(&to), ["content-type", "x-custom"]);
        let mut to = HeaderMap::new();
        to_caller(&from, &mut to, &Scope::Origin);
        assert_eq!(names(&to), ["content-type", "x-custom"]);
    }

    fn link() -> Scope {
        Scope::Path {
            path: "/p/tok".into(),
            prefix: "dhl-0123456789-".into(),
        }
    }

    fn cookies_sent(from: &HeaderMap, scope: &Scope) -> Vec<String> {
        let mut to = HeaderMap::new();
        to_upstream(from, &mut to, scope);
        to.get_all("cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn cookies_for_the_app_only() {
        let from = map(&[
            ("cookie", "deckhand_shell=a; x=1"),
            ("cookie", "__Secure-Deckhand=b;y=2"),
        ]);
        assert_eq!(cookies_sent(&from, &Scope::Origin), ["x=1; y=2"]);
    }

    #[test]
    fn on_deckhands_origin_only_the_links_own_cookies_arrive() {
        let from = map(&[(
            "cookie",
            "deckhand_shell=a; x=1; dhl-0123456789-sid=s=1; dhl-9999999999-sid=other; \
             __Secure-dhl-0123456789-__Host-id=h; dhl-0123456789-__Host-forged=f; \
             __secure-dhl-0123456789-t=2; dhl-0123456789-=empty",
        )]);
        assert_eq!(
            cookies_sent(&from, &link()),
            ["sid=s=1; __Host-id=h; t=2"],
            "foreign, deckhand's, forged secure-prefixed and nameless cookies are dropped"
        );
        assert!(cookies_sent(&map(&[("cookie", "x=1")]), &link()).is_empty());
    }

    #[test]
    fn link_cookie_prefixes_are_per_link_and_valid_names() {
        let a = Scope::on_deckhands_origin("/p/a".into(), "tokenA");
        let b = Scope::on_deckhands_origin("/p/b".into(), "tokenB");
        let prefix = |s: &Scope| match s {
            Scope::Path { prefix, .. } => prefix.clone(),
            Scope::Origin => unreachable!(),
        };
        assert_ne!(prefix(&a), prefix(&b));
        assert_eq!(prefix(&a), prefix(&Scope::on_deckhands_origin("/x".into(), "tokenA")));
        let p = prefix(&a);
        assert_eq!(p.len(), "dhl-".len() + 10 + 1, "{p}");
        assert!(p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'), "{p}");
    }

    #[test]
    fn set_cookie_is_scoped() {
        let path = link();
        let s = |v: &str, scope: &Scope| scoped_set_cookie(v, scope);
        assert_eq!(
            s("a=1; Path=/; Domain=x", &path).as_deref(),
            Some("dhl-0123456789-a=1; Path=/p/tok/")
        );
        assert_eq!(
            s("a=1; path=x; HttpOnly", &path).as_deref(),
            Some("dhl-0123456789-a=1; HttpOnly")
        );
        assert_eq!(
            s("__Host-id=1; Path=/; Secure", &path).as_deref(),
            Some("__Secure-dhl-0123456789-__Host-id=1; Path=/p/tok/; Secure")
        );
        assert_eq!(
            s("a=1; Path=/; Domain=x", &Scope::Origin).as_deref(),
            Some("a=1; Path=/")
        );
        assert_eq!(s("deckhand_shell=1", &Scope::Origin), None);
        assert_eq!(s("deckhand_shell=1", &path), None);
        assert_eq!(s("=1", &path), None);
        let from = map(&[("service-worker-allowed", "/"), ("clear-site-data", "*")]);
        let mut to = HeaderMap::new();
        to_caller(&from, &mut to, &path);
        assert!(to.is_empty());
    }

    #[test]
    fn a_renamed_cookie_comes_back_under_its_own_name() {
        for set in ["sid=abc; Path=/", "__Host-id=h; Path=/; Secure", "__Secure-t=2; Secure"] {
            let out = scoped_set_cookie(set, &link()).unwrap();
            let pair = out.split(';').next().unwrap();
            let mut from = HeaderMap::new();
            from.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
            let sent = cookies_sent(&from, &link());
            assert_eq!(sent, [set.split(';').next().unwrap()], "{out}");
        }
    }
}
