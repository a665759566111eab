//! Binds a browser shell link to the browser that opened it first.
//!
//! The link alone used to be enough to open a terminal in someone's pod. Now the first
//! `GET /shell/{token}` stores the hash of a fresh secret and hands the secret to that
//! browser as an HttpOnly, SameSite=Strict cookie scoped to the link's path; the WebSocket
//! upgrade from a browser must carry that cookie and an Origin of deckhand itself (its
//! `server.public_url`, or the same host the request came to), so another browser, another
//! person who got the link, or another site's page cannot open the shell. The CLI shows the
//! requester's deckhand token instead (see `socket::caller`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::{Session, Sessions, check::Refusal};
use crate::{app::App, domain::new_token, proxy::hash_token};

const COOKIE: &str = "deckhand_shell";

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn taken(session: &Session) -> Refusal {
    Refusal::new(
        StatusCode::FORBIDDEN,
        "Opened in another browser",
        format!(
            "This shell link was already opened in another browser, and only that browser can use it. If that was not you, tell your platform team; {} can ask for a new link with `shell {} in {}`.",
            session.requester, session.app, session.env
        ),
    )
}

/// For the page: the cookie to set when this browser is the first to open the link, `None`
/// when it already holds the link's cookie, a refusal for every other browser.
pub(super) async fn bind_page(
    app: &App,
    headers: &HeaderMap,
    session: &Session,
    token: &str,
) -> Result<Option<HeaderValue>, Refusal> {
    let sessions = Sessions::new(app.store.pool().clone());
    let bound = sessions.browser_hash(&session.id).await.map_err(|_| unavailable())?;
    match (bound, cookie(headers)) {
        (Some(hash), Some(secret)) if hash == hash_token(secret) => Ok(None),
        (Some(_), _) => Err(taken(session)),
        (None, _) => {
            let secret = new_token(32);
            if !sessions
                .bind_browser(&session.id, &hash_token(&secret))
                .await
                .map_err(|_| unavailable())?
            {
                return Err(taken(session));
            }
            let secure = if app.config.server.public_url.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let ttl = ((session.expires_at - crate::domain::now_ms()) / 1000).max(1);
            let value =
                format!("{COOKIE}={secret}; Path=/shell/{token}; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}");
            HeaderValue::from_str(&value).map(Some).map_err(|_| unavailable())
        }
    }
}

/// For the WebSocket upgrade from a browser: same-origin, and the cookie of the browser
/// the link is bound to.
pub(super) async fn check_socket(app: &App, headers: &HeaderMap, session: &Session) -> Result<(), Refusal> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !origin.is_some_and(|o| same_origin(o, &app.config.server.public_url, host)) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Wrong origin",
            format!(
                "A browser may open this shell only from deckhand's own page ({}); this connection came from {}.",
                app.config.server.public_url,
                origin.unwrap_or("no Origin")
            ),
        ));
    }
    let sessions = Sessions::new(app.store.pool().clone());
    let bound = sessions.browser_hash(&session.id).await.map_err(|_| unavailable())?;
    match (bound, cookie(headers)) {
        (Some(hash), Some(secret)) if hash == hash_token(secret) => Ok(()),
        _ => Err(taken(session)),
    }
}

/// Whether `origin` is deckhand's public origin (`server.public_url`), or, for a request
/// that came to a loopback address (`deckhand serve` on a laptop, `kubectl port-forward`,
/// the tests), the origin of that address.
///
/// The Host header alone is not trusted: a browser lets no page forge it, but DNS
/// rebinding does the next best thing. A page on `evil.example`, whose name the attacker
/// points at deckhand's address, sends `Host: evil.example` and `Origin: http://evil.example`
/// which agree with each other. Behind a reverse proxy `public_url` is the only origin
/// deckhand's pages are served from, so it is the only one accepted; a loopback address is
/// one no other site's name can claim.
fn same_origin(origin: &str, public_url: &str, host: Option<&str>) -> bool {
    let public = public_url.trim_end_matches('/');
    let public_origin = public
        .find("://")
        .map(|i| &public[..i + 3 + public[i + 3..].find('/').unwrap_or(public.len() - i - 3)]);
    if public_origin.is_some_and(|p| p.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = host.filter(|h| is_loopback(h)) else {
        return false;
    };
    ["http://", "https://"]
        .iter()
        .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}{host}")))
}

/// Whether a Host header (`name[:port]`, `[v6]:port`) names a loopback address.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn unavailable() -> Refusal {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "Deckhand could not check this shell link just now; try again in a moment.",
    )
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn origins() {
        let public = "https://deckhand.example.com/";
        assert!(same_origin("https://deckhand.example.com", public, None));
        assert!(!same_origin(
            "https://evil.example",
            public,
            Some("deckhand.example.com")
        ));
        assert!(same_origin("http://127.0.0.1:9000", public, Some("127.0.0.1:9000")));
        assert!(!same_origin("http://127.0.0.1:9001", public, Some("127.0.0.1:9000")));
        assert!(!same_origin("null", public, Some("127.0.0.1:9000")));
        assert!(same_origin("http://localhost:9000", public, Some("localhost:9000")));
        assert!(same_origin("http://[::1]:9000", public, Some("[::1]:9000")));
        // DNS rebinding: the attacker's name, pointed at deckhand, in both headers.
        assert!(!same_origin("http://evil.example", public, Some("evil.example")));
        assert!(!same_origin("https://10.0.0.5:8080", public, Some("10.0.0.5:8080")));
        assert!(!same_origin(
            "http://127.0.0.1.evil.example",
            public,
            Some("127.0.0.1.evil.example")
        ));
    }
}
