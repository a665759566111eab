//! Proxy links against going straight to the backend: `scripts/bench-proxy.sh` or
//! `cargo bench --bench proxy`.
//!
//! One small HTTP backend on loopback is measured three ways with the same load:
//! - direct: client -> backend;
//! - API server: client -> the Kubernetes test API server's service proxy -> backend (what
//!   `kubectl proxy` users get; the hop every proxy link also takes);
//! - link: client -> deckhand `/p/<token>/` -> API server -> backend.
//!
//! Each: requests/s at saturation with PROXY_BENCH_CONNECTIONS keep-alive connections, then
//! latency percentiles with PROXY_BENCH_LATENCY_CONNECTIONS connections (closed loop), both
//! for PROXY_BENCH_SECS seconds. Everything shares this machine's cores, so the chain's extra
//! processes' work shows up as lost throughput, as it would on one node.

#[path = "../tests/support/kube/mod.rs"]
mod kube_fake;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::body::Body;
use deckhand::{configuration::Config, startup::Builder};
use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::rt::TokioIo;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The backend: a fixed 64-byte answer, as small as an API health check.
async fn start_backend() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app =
        axum::Router::new().fallback(|| async { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n" });
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

struct Run {
    ok: u64,
    failed: u64,
    secs: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

/// `connections` keep-alive HTTP/1.1 connections, each sending GETs back to back.
async fn load(url: &str, connections: usize, secs: u64) -> Run {
    let uri: hyper::Uri = url.parse().expect("url");
    let authority = uri.authority().expect("authority").to_string();
    let path = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (authority, path) = (authority.clone(), path.clone());
        workers.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(&authority).await.expect("connect");
            let _ = tcp.set_nodelay(true);
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            while Instant::now() < deadline {
                let req = Request::get(path.as_str())
                    .header("host", authority.as_str())
                    .body(Body::empty())
                    .expect("request");
                let t = Instant::now();
                match send.send_request(req).await {
                    Ok(r) if r.status().is_success() => match r.into_body().collect().await {
                        Ok(_) => {
                            ok += 1;
                            latencies.push(t.elapsed());
                        }
                        Err(_) => failed += 1,
                    },
                    _ => failed += 1,
                }
            }
            (ok, failed, latencies)
        }));
    }
    let mut run = Run {
        ok: 0,
        failed: 0,
        secs: 0.0,
        latencies: Vec::new(),
    };
    for w in workers {
        let (ok, failed, l) = w.await.expect("worker");
        run.ok += ok;
        run.failed += failed;
        run.latencies.extend(l);
    }
    run.secs = started.elapsed().as_secs_f64();
    run.latencies.sort_unstable();
    run
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let secs = env_or("PROXY_BENCH_SECS", 5);
    let connections = env_or("PROXY_BENCH_CONNECTIONS", 32) as usize;
    let latency_connections = env_or("PROXY_BENCH_LATENCY_CONNECTIONS", 4) as usize;

    let backend = start_backend().await;
    let kube = kube_fake::KubeTestServer::start().await;
    kube.set_step(Duration::from_millis(10));
    kube.set_service_backend("bench", "shop", &backend);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::defaults().expect("defaults");
    config.store.url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    config.kubernetes.url = kube.url();
    let running = Builder::new(config)
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("deckhand starts");
    let base = format!("http://{}", running.addr);
    let client = Arc::new(deckhand::client::Client::new(&base, "deckhand-local-dev-token"));
    for text in [
        "env create bench",
        "deploy ghcr.io/acme/shop:1.4.2 to bench port=8080",
        "proxy open shop in bench",
    ] {
        let v = client.submit(text).await.expect("submit");
        let id = v["request"]["id"].as_str().expect("id").to_owned();
        client.follow(&id, 0, |_| {}).await.expect("events");
        let done = client.get(&id).await.expect("get");
        assert_eq!(done["request"]["state"], "succeeded", "{text}: {done}");
        if text.starts_with("proxy open") {
            let link = done["events"]
                .as_array()
                .and_then(|es| es.iter().find_map(|e| e["data"]["url"].as_str()))
                .expect("the link")
                .to_owned();
            let path = &link[link.find("/p/").expect("a /p/ link")..];
            let targets = [
                ("direct", format!("{backend}/api/health")),
                (
                    "API server",
                    format!(
                        "{}/api/v1/namespaces/bench/services/shop:8080/proxy/api/health",
                        kube.url()
                    ),
                ),
                ("link", format!("{base}{path}api/health")),
            ];
            measure(&targets, secs, connections, latency_connections).await;
        }
    }
    running.shutdown().await;
}

async fn measure(targets: &[(&str, String)], secs: u64, connections: usize, latency_connections: usize) {
    // Warm-up: connections, the link lookup's statements, the API server client's pool.
    for (_, url) in targets {
        load(url, 4, 1).await;
    }
    let mut rps = Vec::new();
    println!("throughput, {connections} connections, {secs} s each:");
    for (name, url) in targets {
        let r = load(url, connections, secs).await;
        println!(
            "  {name:<10} {:>8.0} req/s  ({} ok, {} failed)",
            r.rps(),
            r.ok,
            r.failed
        );
        rps.push(r.rps());
    }
    println!(
        "  link/direct {:.2}x, link/API server {:.2}x",
        rps[2] / rps[0],
        rps[2] / rps[1]
    );
    println!("latency, {latency_connections} connections, {secs} s each:");
    let mut p99 = Vec::new();
    for (name, url) in targets {
        let r = load(url, latency_connections, secs).await;
        println!(
            "  {name:<10} p50 {}  p90 {}  p99 {}  ({:.0} req/s, {} failed)",
            ms(r.pct(0.50)),
            ms(r.pct(0.90)),
            ms(r.pct(0.99)),
            r.rps(),
            r.failed
        );
        p99.push(r.pct(0.99));
    }
    println!(
        "  p99 added by the link: {} over direct, {} over the API server alone",
        ms(p99[2].saturating_sub(p99[0])),
        ms(p99[2].saturating_sub(p99[1]))
    );
}
