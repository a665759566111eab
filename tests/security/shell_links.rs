//! Security tests: a browser shell link belongs to the browser of the person it was handed to
//! (issue 12, items 1 and 12). The first browser to load the page is bound to the link by an
//! HttpOnly, SameSite=Strict cookie; the WebSocket upgrade needs that cookie and deckhand's
//! own Origin. Runs on SQLite and PostgreSQL.

use deckhand::shell::Sessions;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::{
    cluster::{self, Env, output_data, state},
    support::{Backend, backends},
};

async fn alices_link(backend: Backend) -> (Env, String, String) {
    let env = cluster::start_on(backend, |_| {}).await;
    for text in ["env create ex", "deploy ghcr.io/acme/shop:1.0 to ex"] {
        let v = env.run("alice", text).await;
        assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
    }
    let done = env.run("alice", "shell shop in ex").await;
    assert_eq!(state(&done), "succeeded", "{done:#}");
    let url = output_data(&done)["shell"]["url"]
        .as_str()
        .expect("a shell link")
        .to_owned();
    let path = url[url.find("/shell/").expect("a /shell/ link")..].to_owned();
    let id = done["request"]["id"].as_str().expect("id").to_owned();
    (env, path, id)
}

/// Loads the page as a browser with `cookie`; status, Set-Cookie and body.
async fn load(env: &Env, path: &str, cookie: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = env.app.http.get(format!("{}{path}", env.app.url));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.expect("GET the page");
    let set = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), set, r.text().await.unwrap())
}

/// Opens the socket as a browser would; the refusal's status and text, or `Ok` after the
/// shell answered and exited.
async fn socket(env: &Env, path: &str, origin: Option<&str>, cookie: Option<&str>) -> Result<(), (u16, String)> {
    socket_to(env, path, None, origin, cookie).await
}

/// As [`socket`], with the Host header `host` instead of deckhand's address.
async fn socket_to(
    env: &Env,
    path: &str,
    host: Option<&str>,
    origin: Option<&str>,
    cookie: Option<&str>,
) -> Result<(), (u16, String)> {
    let url = format!("{}{path}/ws", env.app.url.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().unwrap();
    if let Some(h) = host {
        req.headers_mut().insert("host", h.parse().unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, _)) => {
            ws.send(Message::binary(b"exit 0\r".to_vec())).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
            Ok(())
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err((
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eve_cannot_open_alices_shell_link_in_another_browser() {
    for backend in backends() {
        let (env, path, id) = alices_link(backend).await;
        let origin = env.app.url.clone();

        // alice's browser loads the page first and is handed the link's cookie.
        let (status, set, _) = load(&env, &path, None).await;
        assert_eq!(status, 200);
        let set = set.expect("the page binds the link to this browser");
        for attr in ["HttpOnly", "SameSite=Strict", &format!("Path={path}")] {
            assert!(set.contains(attr), "cookie lacks {attr}: {set}");
        }
        let alices = set.split(';').next().unwrap().to_owned();

        // eve, who got the link, loads the page in her browser: a clear refusal, no cookie.
        let (status, set, page) = load(&env, &path, None).await;
        assert_eq!(status, 403, "{page}");
        assert!(set.is_none(), "eve was handed a cookie: {set:?}");
        assert!(page.contains("already opened in another browser"), "{page}");
        // ... with a cookie she made up.
        let (status, _, _) = load(&env, &path, Some("deckhand_shell=guess")).await;
        assert_eq!(status, 403);

        // Her socket without the cookie, or with a guessed one, is refused too.
        for cookie in [None, Some("deckhand_shell=guess")] {
            let (status, text) = socket(&env, &path, Some(&origin), cookie).await.unwrap_err();
            assert_eq!(status, 403, "{cookie:?}: {text}");
            assert!(text.contains("another browser"), "{text}");
        }

        // alice's browser opens it, and the session is on record as hers.
        socket(&env, &path, Some(&origin), Some(&alices))
            .await
            .expect("alice's browser opens her shell");
        let sessions = Sessions::new(env.app.app().store.pool().clone());
        let rows = sessions.of_request(&id).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].requester.as_str(), rows[0].client.as_deref()),
            ("alice", Some("browser"))
        );
        assert!(rows[0].started_at.is_some(), "{rows:?}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shell_socket_refuses_foreign_origin() {
    for backend in backends() {
        let (env, path, _) = alices_link(backend).await;
        let (_, set, _) = load(&env, &path, None).await;
        let cookie = set.expect("cookie").split(';').next().unwrap().to_owned();

        // A page on another site (or a script with no Origin) cannot use alice's cookie.
        for origin in [Some("https://evil.example"), Some("null"), None] {
            let (status, text) = socket(&env, &path, origin, Some(&cookie)).await.unwrap_err();
            assert_eq!(status, 403, "{origin:?}: {text}");
            assert!(text.contains("deckhand's own page"), "{text}");
        }
        // Nothing was started by the refused attempts: alice's own page still opens it.
        socket(&env, &path, Some(&env.app.url.clone()), Some(&cookie))
            .await
            .expect("alice's own page opens her shell");
        env.app.shutdown().await;
    }
}

/// DNS rebinding: a page on a name the attacker points at deckhand's address sends Host and
/// Origin that agree with each other. Only `server.public_url`'s origin (or a loopback
/// address's, which no other site's name can claim) opens a shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shell_socket_refuses_a_rebound_host_origin() {
    for backend in backends() {
        let (env, path, _) = alices_link(backend).await;
        let (_, set, _) = load(&env, &path, None).await;
        // Even with alice's cookie (the Origin check stands on its own).
        let cookie = set.expect("cookie").split(';').next().unwrap().to_owned();
        let port = env.app.addr.port();
        for host in [format!("evil.example:{port}"), format!("10.0.0.5:{port}")] {
            let origin = format!("http://{host}");
            let (status, text) = socket_to(&env, &path, Some(&host), Some(&origin), Some(&cookie))
                .await
                .unwrap_err();
            assert_eq!(status, 403, "{host}: {text}");
            assert!(text.contains("deckhand's own page"), "{text}");
        }
        // deckhand's public origin is accepted whatever Host the reverse proxy passes on.
        let public = env.app.app().config.server.public_url.clone();
        let rest = &public[public.find("://").expect("a URL") + 3..];
        let public = &public[..public.len() - rest.len() + rest.find('/').unwrap_or(rest.len())];
        socket_to(
            &env,
            &path,
            Some(&format!("internal-name:{port}")),
            Some(public),
            Some(&cookie),
        )
        .await
        .expect("alice's page on deckhand's public origin opens her shell");
        env.app.shutdown().await;
    }
}
