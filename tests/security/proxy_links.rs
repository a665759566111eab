//! Security tests: proxy_links (see main.rs). Issue 12, item 8 and the query strings of
//! item 11: a proxied app must not reach deckhand's cookies, other links' cookies, a
//! service worker over deckhand's paths, or the cluster credential; `proxy list` must not
//! show what others put in their query strings.
//!
//! deckhand runs against the Kubernetes test API server, whose service proxy forwards to a
//! local HTTP server standing behind the test Service `shop`.

use std::collections::BTreeMap;

use axum::{
    http::{HeaderMap, HeaderValue, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{
    cluster::{self, Env, state},
    support::{Backend, backends, output_of},
};

const PUBLIC: &str = "https://deckhand.example.test";

/// Answers with what arrived: method, URI and every header, as JSON.
async fn echo(method: axum::http::Method, uri: Uri, headers: HeaderMap) -> axum::Json<Value> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &headers {
        let v = v.to_str().unwrap_or("<binary>").to_owned();
        seen.entry(k.as_str().to_owned()).or_default().push(v);
    }
    axum::Json(json!({ "method": method.as_str(), "uri": uri.to_string(), "headers": seen }))
}

/// What an app sets at login: a session cookie for its whole site and its own domain, one
/// for a sub-path, one with no attributes.
async fn login() -> Response {
    let mut r = "welcome".into_response();
    for c in [
        "sid=s1; Path=/; Domain=deckhand.example.test; HttpOnly",
        "pref=p1; path=/settings; Secure; DOMAIN=.example.test",
        "plain=1",
    ] {
        r.headers_mut().append(header::SET_COOKIE, HeaderValue::from_static(c));
    }
    r
}

/// A service worker script that asks to control the whole origin and clears its cookies.
async fn sw() -> Response {
    let mut r = "self.addEventListener('fetch', () => {});".into_response();
    let h = r.headers_mut();
    h.insert("service-worker-allowed", HeaderValue::from_static("/"));
    h.insert("clear-site-data", HeaderValue::from_static("\"cookies\", \"storage\""));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript"));
    r
}

/// An app that answers with credential headers of its own.
async fn creds() -> Response {
    let mut r = "creds".into_response();
    let h = r.headers_mut();
    for (k, v) in [
        ("impersonate-user", "system:admin"),
        ("impersonate-group", "system:masters"),
        ("authorization", "Bearer from-the-app"),
        ("x-remote-user", "root"),
        ("x-kept", "yes"),
    ] {
        h.insert(axum::http::HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    r
}

async fn start_backend() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/login", axum::routing::get(login))
        .route("/sw.js", axum::routing::get(sw))
        .route("/creds", axum::routing::get(creds))
        .fallback(echo);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// deckhand with `edit` applied, alice's environment `shop` with the app `shop` on port 8080,
/// and the real backend behind its Service.
async fn start(backend: Backend, edit: impl FnOnce(&mut deckhand::configuration::Config)) -> Env {
    let env = cluster::start_on(backend, edit).await;
    env.kube.set_service_backend("shop", "shop", &start_backend().await);
    assert_eq!(state(&env.run("alice", "env create shop").await), "succeeded");
    let done = env
        .run("alice", "deploy ghcr.io/acme/shop:1.4.2 to shop port=8080")
        .await;
    assert_eq!(state(&done), "succeeded", "{done:#}");
    env
}

async fn start_path_based(backend: Backend, public: &str) -> Env {
    let public = public.to_owned();
    start(backend, move |c| c.server.public_url = public).await
}

/// alice opens a link; returns its id and the URL handed to her.
async fn open(env: &Env) -> (String, String) {
    let v = env.run("alice", "proxy open shop in shop").await;
    assert_eq!(state(&v), "succeeded", "{v:#}");
    let rid = v["request"]["id"].as_str().unwrap();
    let (_, v) = env.app.get_as("alice", &format!("/api/v1/requests/{rid}")).await;
    let data = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "output")
        .map(|e| e["data"].clone())
        .unwrap_or_default();
    let id = data["id"].as_str().unwrap_or_default().to_owned();
    (id, data["url"].as_str().unwrap_or_default().to_owned())
}

/// A path-based link: (id, token, the link's URL on the test server).
async fn open_path_link(env: &Env, public: &str) -> (String, String, String) {
    let (id, url) = open(env).await;
    let path = url
        .strip_prefix(public.trim_end_matches('/'))
        .unwrap_or_else(|| panic!("the link is on public_url: {url}"));
    let token = path
        .strip_prefix("/p/")
        .and_then(|t| t.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned();
    (id, token, format!("{}{path}", env.app.url))
}

fn values(r: &reqwest::Response, name: &str) -> Vec<String> {
    r.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The cookie prefix of a link on deckhand's origin, read from what its app's login set:
/// `dhl-` and 10 hex digits, the same for every cookie of the link.
fn link_prefix(set_cookies: &[String]) -> String {
    let first = set_cookies.first().expect("the app set cookies");
    let prefix = &first[..first.find('-').expect("dhl-") + 12];
    assert!(
        prefix.starts_with("dhl-") && prefix.ends_with('-') && prefix[4..14].bytes().all(|b| b.is_ascii_hexdigit()),
        "{first}"
    );
    prefix.to_owned()
}

/// What the app behind `url` received as its Cookie header when the browser sent `cookie`.
async fn cookie_seen(url: &str, cookie: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{url}whoami"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["headers"]["cookie"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxied_app_cookie_is_scoped_to_its_link() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        // deckhand behind a reverse proxy under /deckhand: the browser sees that prefix.
        let public = format!("{PUBLIC}/deckhand/");
        let env = start_path_based(backend, &public).await;
        let (_, token, url) = open_path_link(&env, &public).await;
        let r = reqwest::get(format!("{url}login")).await.unwrap();
        assert_eq!(r.status(), 200);
        let set = values(&r, "set-cookie");
        let p = link_prefix(&set);
        assert_eq!(
            set,
            [
                format!("{p}sid=s1; Path=/deckhand/p/{token}/; HttpOnly"),
                format!("{p}pref=p1; Path=/deckhand/p/{token}/settings; Secure"),
                format!("{p}plain=1"),
            ],
            "cookies stay under the link's path (the browser's default path is inside it too), \
         carry the link's name prefix, and no Domain widens them"
        );
        assert_eq!(r.text().await.unwrap(), "welcome");
        // The browser sends them back as set; the app gets them under the names it chose.
        let got = cookie_seen(&url, &format!("{p}sid=s1; {p}plain=1")).await;
        assert_eq!(got, json!(["sid=s1; plain=1"]));
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deckhand_cookies_never_reach_the_proxied_app() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_path_based(backend, PUBLIC).await;
        let (_, _, url) = open_path_link(&env, PUBLIC).await;
        let p = link_prefix(&values(
            &reqwest::get(format!("{url}login")).await.unwrap(),
            "set-cookie",
        ));
        let got = cookie_seen(
            &url,
            &format!(
                "deckhand_shell=sh-secret; {p}theme=dark; deckhand_session=sess; __Host-deckhand_csrf=c; \
                 b=2; {p}b=3"
            ),
        )
        .await;
        assert_eq!(
            got,
            json!(["theme=dark; b=3"]),
            "only the cookies this link's app set arrive; nothing deckhand (or anyone else) set"
        );
        let got = cookie_seen(&url, "deckhand_shell=sh-secret; theme=dark").await;
        assert_eq!(got, Value::Null, "no Cookie header when nothing is left");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_apps_cookie_never_reaches_this_link() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_path_based(backend, PUBLIC).await;
        let (_, _, mine) = open_path_link(&env, PUBLIC).await;
        let (_, _, other) = open_path_link(&env, PUBLIC).await;
        let login =
            |url: String| async move { values(&reqwest::get(format!("{url}login")).await.unwrap(), "set-cookie") };
        let (p_mine, p_other) = (
            link_prefix(&login(mine.clone()).await),
            link_prefix(&login(other.clone()).await),
        );
        assert_ne!(p_mine, p_other, "each link names its cookies differently");

        // The other link's page sets cookies for the whole origin with document.cookie (which
        // Path scoping cannot stop: `Path=/` covers every link), some named like this link's
        // own, and the browser sends them along with this link's own session.
        let sent = format!("sid=stolen-by-other; {p_other}sid=s-other; {p_mine}sid=s-mine; {p_other}track=1");
        let got = cookie_seen(&mine, &sent).await;
        assert_eq!(got, json!(["sid=s-mine"]), "this link's app sees only its own session");
        let got = cookie_seen(&other, &sent).await;
        assert_eq!(got, json!(["sid=s-other; track=1"]), "and the other app only its own");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_worker_allowed_is_removed() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_path_based(backend, PUBLIC).await;
        let (_, _, url) = open_path_link(&env, PUBLIC).await;
        let r = reqwest::get(format!("{url}sw.js")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("service-worker-allowed").is_none(), "{:?}", r.headers());
        assert!(
            r.headers().get("clear-site-data").is_none(),
            "an app cannot clear deckhand's cookies either: {:?}",
            r.headers()
        );
        assert_eq!(r.headers()["content-type"], "text/javascript");
        assert!(r.text().await.unwrap().contains("addEventListener"));
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn impersonate_and_credential_headers_are_stripped() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_path_based(backend, PUBLIC).await;
        let (_, _, url) = open_path_link(&env, PUBLIC).await;
        let http = reqwest::Client::new();
        let mut req = http.get(format!("{url}whoami")).header("x-test", "kept");
        for (k, v) in [
            ("Impersonate-User", "system:admin"),
            ("Impersonate-Group", "system:masters"),
            ("Impersonate-Uid", "0"),
            ("Impersonate-Extra-Scopes", "all"),
            ("Authorization", "Bearer caller-token"),
            ("Proxy-Authorization", "Basic Y2FsbGVyOnB3"),
            ("X-Remote-User", "root"),
            ("X-Remote-Group", "system:masters"),
            ("X-Forwarded-User", "root"),
        ] {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let seen = r.json::<Value>().await.unwrap();
        let headers = seen["headers"].as_object().unwrap();
        assert_eq!(headers["x-test"], json!(["kept"]), "{seen:#}");
        for name in headers.keys() {
            assert!(
                !name.starts_with("impersonate-")
                    && !name.starts_with("x-remote-")
                    && !["authorization", "proxy-authorization", "x-forwarded-user"].contains(&name.as_str()),
                "{name} reached the API server and the app: {seen:#}"
            );
        }

        let r = reqwest::get(format!("{url}creds")).await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers();
        for name in [
            "impersonate-user",
            "impersonate-group",
            "authorization",
            "x-remote-user",
        ] {
            assert!(h.get(name).is_none(), "{name} came back from the app: {h:?}");
        }
        assert_eq!(h["x-kept"], "yes");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_domain_serves_each_link_on_its_own_origin() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, |c| {
            c.server.public_url = format!("{PUBLIC}/");
            c.server.proxy_domain = "Proxy.Example.Test".into();
        })
        .await;
        let (id1, url1) = open(&env).await;
        let (_, url2) = open(&env).await;
        let host_of = |url: &str| -> String {
            let host = url
                .strip_prefix("https://")
                .and_then(|u| u.strip_suffix('/'))
                .unwrap_or_else(|| panic!("a link is the root of its own https origin: {url}"));
            let token = host
                .strip_suffix(".proxy.example.test")
                .unwrap_or_else(|| panic!("{url}"));
            assert_eq!(token.len(), 26, "{url}");
            host.to_owned()
        };
        let (host1, host2) = (host_of(&url1), host_of(&url2));
        assert_ne!(host1, host2);
        let token1 = host1.split('.').next().unwrap().to_owned();
        let port = env.app.addr.port();
        let wrong = format!("x.{host1}");
        let guessed = format!("{}.proxy.example.test", deckhand::domain::new_token(26));
        let mut http = reqwest::Client::builder();
        for host in [&host1, &host2, &wrong, &guessed] {
            http = http.resolve(host, env.app.addr);
        }
        let http = http.build().unwrap();
        let get = |host: &str, path: &str| http.get(format!("http://{host}:{port}{path}")).send();

        // Every path on the link's origin is the app's, deckhand's API paths included.
        let r = get(&host1, "/api/v1/requests?scope=all").await.unwrap();
        assert_eq!(r.status(), 200);
        let seen = r.json::<Value>().await.unwrap();
        assert_eq!(seen["uri"], "/api/v1/requests?scope=all", "{seen:#}");
        let r = get(&host2.to_uppercase(), "/").await.unwrap();
        assert_eq!(r.status(), 200, "host names are case-insensitive");
        assert_eq!(r.json::<Value>().await.unwrap()["uri"], "/");

        // Cookies are the origin's own: Domain is dropped, the app's Path is kept.
        let r = get(&host1, "/login").await.unwrap();
        assert_eq!(
            values(&r, "set-cookie"),
            ["sid=s1; Path=/; HttpOnly", "pref=p1; path=/settings; Secure", "plain=1"]
        );

        // The link is refused anywhere else: path-based on deckhand, or on another name.
        let http_plain = reqwest::Client::new();
        for path in [
            format!("/p/{token1}/"),
            format!("/p/{token1}/api"),
            format!("/p/{token1}"),
        ] {
            let r = http_plain.get(format!("{}{path}", env.app.url)).send().await.unwrap();
            assert_eq!(r.status(), 404, "{path}");
        }
        assert_eq!(get(&wrong, "/").await.unwrap().status(), 404);
        assert_eq!(get(&guessed, "/").await.unwrap().status(), 404);
        // deckhand itself still answers on its own host.
        let r = http_plain.get(format!("{}/healthz", env.app.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);

        let closed = env.run("alice", &format!("proxy close {id1}")).await;
        assert_eq!(state(&closed), "succeeded", "{closed:#}");
        assert_eq!(get(&host1, "/").await.unwrap().status(), 410);
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_list_shows_no_query_strings() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_path_based(backend, PUBLIC).await;
        let (id, _, url) = open_path_link(&env, PUBLIC).await;
        let r = reqwest::get(format!("{url}reset?token=s3cret-q&email=alice%40example.test"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let seen = r.json::<Value>().await.unwrap();
        assert_eq!(
            seen["uri"], "/reset?token=s3cret-q&email=alice%40example.test",
            "the app still gets its query"
        );
        // A row written before this fix, with its query, is not shown either.
        let pool = env.app.app().store.pool().clone();
        sqlx::query(
            "INSERT INTO proxy_requests (link_id, at, method, path, status, millis) \
         VALUES ($1, 1, 'GET', '/old?api_key=0ld-s3cret', 200, 1)",
        )
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();

        let list = env.run("bob", "proxy list").await;
        let out = output_of(&list);
        assert!(out.contains("    GET /reset 200 "), "{out}");
        assert!(out.contains("    GET /old 200 "), "{out}");
        for secret in ["s3cret-q", "alice%40", "0ld-s3cret"] {
            assert!(!list.to_string().contains(secret), "{secret} in {list:#}");
        }
        // What the proxy wrote holds the path only.
        let paths: Vec<String> = sqlx::query_scalar("SELECT path FROM proxy_requests WHERE link_id = $1 AND at > 1")
            .bind(&id)
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(paths, ["/reset"]);
        env.app.shutdown().await;
    }
}
