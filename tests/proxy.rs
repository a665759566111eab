//! Proxy links end to end: deckhand against the Kubernetes test API server, whose service
//! proxy forwards to a real local HTTP server standing behind the test Service.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::time::Duration;

use axum::{
    body::Bytes,
    http::{HeaderMap, Method, Uri},
};
use cluster::{Env, outcome, state};
use serde_json::Value;
use support::backends;

const PUBLIC: &str = "https://deckhand.example.test";

/// Answers every request with what it received, so a test sees what arrived.
async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> String {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    format!(
        "{method} {uri} x-test={} authorization={} body={}",
        header("x-test"),
        header("authorization"),
        String::from_utf8_lossy(&body)
    )
}

/// Sends the request body back as it arrives, so a caller sees its first chunk answered
/// before it sends the second only if nothing on the way buffers.
async fn stream_echo(body: axum::body::Body) -> axum::body::Body {
    axum::body::Body::from_stream(body.into_data_stream())
}

/// A WebSocket echo server, upgraded by hand as the Kubernetes test server does.
async fn ws_echo(mut req: axum::extract::Request) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role};
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return (StatusCode::BAD_REQUEST, "not a WebSocket request").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() || msg.is_binary() {
                if ws.send(msg).await.is_err() {
                    break;
                }
            } else if msg.is_close() {
                break;
            }
        }
    });
    let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).unwrap());
    r
}

/// Streams a line every 100 ms for 30 s: a long download, or a feed that never ends.
async fn slow() -> axum::body::Body {
    let ticks = futures_util::stream::unfold(0u32, |n| async move {
        if n == 300 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(format!("tick {n}\n")), n + 1))
    });
    axum::body::Body::from_stream(ticks)
}

async fn start_backend() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/stream-echo", axum::routing::post(stream_echo))
        .route("/ws", axum::routing::get(ws_echo))
        .route("/slow", axum::routing::get(slow))
        .fallback(echo);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// The cluster test environment with a real HTTP backend behind the `shop` Service, on the
/// given store backend.
async fn start_on(backend: support::Backend) -> Env {
    let env = cluster::start_on(backend, |c| c.server.public_url = format!("{PUBLIC}/")).await;
    env.kube.set_service_backend("shop", "shop", &start_backend().await);
    env
}

impl Env {
    /// An environment `shop` with the app `shop` deployed and its Service on port 8080.
    async fn with_app(&self) {
        assert_eq!(state(&self.run("alice", "env create shop").await), "succeeded");
        let done = self
            .run("alice", "deploy ghcr.io/acme/shop:1.4.2 to shop port=8080")
            .await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
    }

    /// Opens a link and returns (link id, URL on the test server, request view).
    async fn open(&self, text: &str) -> (String, String, Value) {
        let v = self.run("alice", text).await;
        assert_eq!(state(&v), "succeeded", "{v:#}");
        // Read as the requester: only they get the link through the API.
        let rid = v["request"]["id"].as_str().unwrap();
        let (_, v) = self.app.get_as("alice", &format!("/api/v1/requests/{rid}")).await;
        let data = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "output")
            .map(|e| e["data"].clone())
            .unwrap_or_default();
        let public = data["url"].as_str().unwrap_or_default().to_owned();
        let path = public
            .strip_prefix(PUBLIC)
            .unwrap_or_else(|| panic!("the link is on public_url: {public}"));
        assert!(path.starts_with("/p/") && path.ends_with('/'), "{public}");
        let id = data["id"].as_str().unwrap_or_default().to_owned();
        (id, format!("{}{path}", self.app.url), v)
    }

    async fn hits(&self, id: &str) -> i64 {
        let v = self.run("alice", "proxy list shop").await;
        let links = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "output")
            .map(|e| e["data"]["links"].clone())
            .unwrap_or_default();
        links
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id)
            .and_then(|l| l["hits"].as_i64())
            .unwrap_or(-1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_and_post_reach_the_backend_until_the_link_is_closed() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend).await;
        env.with_app().await;
        let (id, url, v) = env.open("proxy open shop in shop").await;
        assert!(
            outcome(&v).contains(&format!("proxy {id} to shop:8080 in shop open until")),
            "{v:#}"
        );
        // The link is a credential: others reading the request through the API do not get it.
        let rid = v["request"]["id"].as_str().unwrap();
        let (_, mine) = env.app.get_as("alice", &format!("/api/v1/requests/{rid}")).await;
        assert!(mine.to_string().contains("/p/"), "the requester reads the link: {mine}");
        let (_, theirs) = env.app.get_as("bob", &format!("/api/v1/requests/{rid}")).await;
        assert!(!theirs.to_string().contains("/p/"), "{theirs:#}");
        assert!(theirs.to_string().contains("only alice can read this"), "{theirs:#}");
        let (_, all) = env.app.get_as(support::ADMIN, "/api/v1/requests?scope=all").await;
        assert!(!all.to_string().contains("/p/"), "listings carry no link: {all}");
        let http = reqwest::Client::new();

        let r = http
            .get(format!("{url}api/items?q=a%20b&n=1"))
            .header("x-test", "hello")
            .header("authorization", "Bearer not-for-the-backend")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert_eq!(
            body, "GET /api/items?q=a%20b&n=1 x-test=hello authorization=- body=",
            "path, query and end-to-end headers arrive; the caller's credentials do not"
        );

        let r = http
            .post(format!("{url}orders"))
            .header("content-type", "application/json")
            .body(r#"{"sku":"abc","qty":2}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.text().await.unwrap(),
            r#"POST /orders x-test=- authorization=- body={"sku":"abc","qty":2}"#
        );
        assert_eq!(env.hits(&id).await, 2);
        let list = env.run("alice", "proxy list").await;
        let out = support::output_of(&list);
        assert!(out.contains(&id) && out.contains("hits 2, last "), "{out}");
        // The latest requests (method, path after the token, status), never the token.
        assert!(out.contains("    POST /orders 200 "), "{out}");
        // The path only: a query may carry secrets and proxy list is open to everyone.
        assert!(out.contains("    GET /api/items 200 "), "{out}");
        assert!(!list.to_string().contains("q=a%20b"), "{list:#}");
        let token = url.trim_end_matches('/').rsplit('/').next().unwrap();
        assert!(!list.to_string().contains(token), "{list:#}");

        let closed = env.run("bob", &format!("proxy close {id}")).await;
        assert_eq!(state(&closed), "succeeded", "{closed:#}");
        assert_eq!(
            outcome(&closed),
            format!("proxy {id} to shop:8080 in shop closed after 2 requests")
        );
        let r = http.get(format!("{url}api/items")).send().await.unwrap();
        assert_eq!(r.status(), 410);
        let page = r.text().await.unwrap();
        assert!(page.contains("was closed by bob"), "{page}");
        assert_eq!(env.hits(&id).await, 2, "refused requests are not forwarded or counted");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_and_guessed_links_are_refused() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend).await;
        env.with_app().await;
        let (_, url, _) = env.open("proxy open shop in shop ttl=1s").await;
        let http = reqwest::Client::new();
        assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
        // The link stops working once its second is up.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let r = loop {
            let r = http.get(&url).send().await.unwrap();
            if r.status() != 200 || tokio::time::Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(r.status(), 410);
        assert!(r.text().await.unwrap().contains("has expired"));

        let guessed = format!("{}/p/{}/", env.app.url, deckhand::domain::new_token(26));
        let r = http.get(&guessed).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            http.get(format!("{}/p/x/", env.app.url)).send().await.unwrap().status(),
            404
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_checks_the_service_port_and_ttl_and_prod_waits_for_ops() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend).await;
        env.with_app().await;
        let bad_port = env.run("alice", "proxy open shop in shop port=9090").await;
        assert_eq!(state(&bad_port), "failed");
        assert_eq!(outcome(&bad_port), "service shop in shop has no port 9090; it has 8080");
        let too_long = env.run("alice", "proxy open shop in shop ttl=2d").await;
        assert_eq!(state(&too_long), "failed");
        assert!(
            outcome(&too_long) == "proxy links in shop (dev tier) live at most 8h; 2d is too long",
            "{too_long:#}"
        );
        let missing = env.run("alice", "proxy open nothing in shop").await;
        assert_eq!(state(&missing), "failed");
        assert!(
            outcome(&missing).contains("service nothing in shop not found"),
            "{missing:#}"
        );

        // Without a backend registered and no ready pod, the API server's own 503 comes through.
        let (_, url, _) = env.open("proxy open shop in shop").await;
        env.kube.set_service_backend("shop", "shop", "http://127.0.0.1:9");
        let r = reqwest::get(&url).await.unwrap();
        assert_eq!(r.status(), 503);

        let pending = env.run("olga", "env create pay prod").await;
        assert_eq!(state(&pending), "pending_approval");
        let id = pending["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("omar", &id).await;
        env.app.wait_for_state(&id, &["succeeded"]).await;
        let (status, v) = env.app.submit_as("alice", "proxy open shop in pay").await;
        assert_eq!(status, 201, "{v:#}");
        assert_eq!(state(&v), "pending_approval", "{v:#}");

        // prod keeps its links shorter (tiers.prod.proxy_max_ttl = 1h).
        let (_, v) = env.app.submit_as("olga", "proxy open shop in pay ttl=2h").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("omar", &id).await;
        let done = env.app.wait_for_state(&id, &["failed", "succeeded"]).await;
        assert_eq!(
            outcome(&done),
            "proxy links in pay (prod tier) live at most 1h; 2h is too long"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_stream_both_ways_and_websockets_pass_through() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;

        let env = start_on(backend).await;
        env.with_app().await;
        let (id, url, _) = env.open("proxy open shop in shop").await;

        // Request and answer interleave: the second chunk is only sent once the first came back,
        // which would deadlock if deckhand or the API server buffered either body.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
        let sent = reqwest::Client::new()
            .post(format!("{url}stream-echo"))
            .body(body)
            .send();
        let mut answer = tokio::time::timeout(Duration::from_secs(5), sent)
            .await
            .expect("the answer starts before the request body ends")
            .unwrap();
        assert_eq!(answer.status(), 200);
        for chunk in ["first ", "second ", "third"] {
            tx.send(Ok(chunk.as_bytes().to_vec())).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), answer.chunk())
                .await
                .expect("the echo of a chunk arrives while the request is still open")
                .unwrap()
                .unwrap();
            assert_eq!(got, chunk.as_bytes());
        }
        drop(tx);
        assert!(
            answer.chunk().await.unwrap().is_none(),
            "the answer ends with the request"
        );

        // A body larger than anything worth buffering goes through whole.
        let big = vec![b'x'; 24 * 1024 * 1024];
        let r = reqwest::Client::new()
            .post(format!("{url}stream-echo"))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().len(), big.len());

        // A WebSocket through the link: the upgrade reaches the backend and frames flow both ways.
        let ws_url = format!("{}ws", url.replacen("http://", "ws://", 1));
        let (mut ws, response) = tokio_tungstenite::connect_async(ws_url.as_str()).await.unwrap();
        assert_eq!(response.status(), 101);
        for text in ["hello", "through the link"] {
            ws.send(Message::text(text)).await.unwrap();
            let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("the echo arrives")
                .unwrap()
                .unwrap();
            assert_eq!(echoed, Message::text(text));
        }
        ws.close(None).await.unwrap();
        assert_eq!(env.hits(&id).await, 3, "each request and the WebSocket count once");

        // Closed links refuse WebSockets too, with the page that says so.
        env.run("alice", &format!("proxy close {id}")).await;
        match tokio_tungstenite::connect_async(ws_url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 410),
            other => panic!("a closed link must not upgrade: {other:?}"),
        }
        env.app.shutdown().await;
    }
}

/// An mpsc receiver as a stream (tokio-stream is not a dependency for one adapter).
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hits_and_the_latest_requests_are_kept_on_both_backends() {
    use deckhand::proxy::{Links, NewLink, Recent};
    for backend in support::backends() {
        let db = support::TestDb::new(backend).await;
        let store = db.store(2).await;
        let links = Links::new(store.pool().clone());
        links
            .insert(&NewLink {
                id: "px-test".into(),
                token_hash: "h".into(),
                env: "shop".into(),
                service: "shop".into(),
                port: 8080,
                requester: "alice".into(),
                request_id: "r-test".into(),
                expires_at: i64::MAX,
            })
            .await
            .unwrap();
        let request = |at: i64| Recent {
            at,
            method: "GET".into(),
            path: format!("/n/{at}"),
            status: 200,
            millis: 1,
        };
        // Two flushes of 15: 30 hits, the newest 20 requests kept.
        let first: Vec<Recent> = (1..=15).map(request).collect();
        let second: Vec<Recent> = (16..=30).map(request).collect();
        links.add_hits("px-test", 15, &first).await.unwrap();
        links.add_hits("px-test", 15, &second).await.unwrap();
        let link = links.get("px-test").await.unwrap().unwrap();
        assert_eq!((link.hits, link.last_used_at), (30, Some(30)), "{backend:?}");
        let recent = links.recent("px-test", 100).await.unwrap();
        let ats: Vec<i64> = recent.iter().map(|r| r.at).collect();
        assert_eq!(ats, (11..=30).rev().collect::<Vec<_>>(), "{backend:?}");
        assert_eq!(recent[0].path, "/n/30");
        store.close().await;
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket through the link at `url`, checked to echo.
async fn open_ws(url: &str) -> Ws {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ws_url = format!("{}ws", url.replacen("http://", "ws://", 1));
    let (mut ws, response) = tokio_tungstenite::connect_async(ws_url.as_str()).await.unwrap();
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(
        matches!(&echoed, Ok(Some(Ok(m))) if *m == Message::text("hello")),
        "{echoed:?}"
    );
    ws
}

/// Waits for the WebSocket to end (close frame, EOF or reset) before `deadline`.
async fn ws_ends_by(ws: &mut Ws, deadline: tokio::time::Instant, what: &str) {
    use futures_util::StreamExt;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("{what}: the WebSocket is still open"),
            Ok(None | Some(Err(_))) => return,
            Ok(Some(Ok(m))) if m.is_close() => return,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Reads a streaming answer until it stops (ends or breaks) before `deadline`.
async fn stream_ends_by(r: &mut reqwest::Response, deadline: tokio::time::Instant, what: &str) {
    loop {
        match tokio::time::timeout_at(deadline, r.chunk()).await {
            Err(_) => panic!("{what}: the answer is still streaming"),
            Ok(Ok(None) | Err(_)) => return,
            Ok(Ok(Some(_))) => {}
        }
    }
}

/// A slow streaming answer through the link, its first line read.
async fn open_stream(url: &str) -> reqwest::Response {
    let mut r = reqwest::get(format!("{url}slow")).await.unwrap();
    assert_eq!(r.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk()).await;
    assert!(
        matches!(&first, Ok(Ok(Some(c))) if c.starts_with(b"tick 0")),
        "{first:?}"
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_a_link_cuts_its_open_websocket_within_a_second() {
    for backend in support::backends() {
        let env = start_on(backend).await;
        env.with_app().await;
        let (id, url, _) = env.open("proxy open shop in shop").await;
        let mut ws = open_ws(&url).await;
        let mut stream = open_stream(&url).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        let closed = env.run("bob", &format!("proxy close {id}")).await;
        assert_eq!(state(&closed), "succeeded", "{closed:#}");
        ws_ends_by(&mut ws, deadline, &format!("{backend:?}: 1 s after proxy close")).await;
        stream_ends_by(&mut stream, deadline, &format!("{backend:?}: 1 s after proxy close")).await;
        env.app.shutdown().await;
    }
}

/// Two replicas on one store. PostgreSQL only: SQLite is single-replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_closed_on_another_replica_cuts_connections_here() {
    if !support::backends().contains(&support::Backend::Postgres) {
        return;
    }
    let env = start_on(support::Backend::Postgres).await;
    env.with_app().await;
    let (id, url, _) = env.open("proxy open shop in shop").await;
    // Replica B: the same configuration, store and cluster as A (`env.app`).
    let config = (*env.app.app().config).clone();
    let running = deckhand::startup::Builder::new(config)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("replica B starts");
    let b = support::TestApp::from_running(running);
    // Both go through A.
    let mut ws = open_ws(&url).await;
    let mut stream = open_stream(&url).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let (status, v) = b.submit_as("bob", &format!("proxy close {id}")).await;
    assert_eq!(status, 201, "{v:#}");
    let rid = v["request"]["id"].as_str().unwrap();
    let closed = b.wait_for_state(rid, &["succeeded", "failed"]).await;
    assert_eq!(state(&closed), "succeeded", "{closed:#}");
    ws_ends_by(&mut ws, deadline, "1 s after proxy close on replica B").await;
    stream_ends_by(&mut stream, deadline, "1 s after proxy close on replica B").await;
    // And A refuses the link from then on.
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("was closed by bob"));
    b.shutdown().await;
    env.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expiring_link_cuts_a_streaming_response() {
    for backend in support::backends() {
        let env = start_on(backend).await;
        env.with_app().await;
        // A little over the shortest sensible ttl, so the first line surely comes before expiry.
        let (_, url, v) = env.open("proxy open shop in shop ttl=2s").await;
        let expires_at = cluster::output_data(&v)["expires_at"].as_i64().expect("expires_at");
        let mut stream = open_stream(&url).await;
        let mut ws = open_ws(&url).await;
        let left = u64::try_from(expires_at - deckhand::domain::now_ms()).unwrap_or(0);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(left) + Duration::from_secs(1);
        let what = format!("{backend:?}: 1 s after the link expired");
        stream_ends_by(&mut stream, deadline, &what).await;
        assert!(
            deckhand::domain::now_ms() >= expires_at,
            "{backend:?}: cut before the link expired"
        );
        ws_ends_by(&mut ws, deadline, &what).await;
        env.app.shutdown().await;
    }
}
