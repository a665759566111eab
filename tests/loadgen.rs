//! The load generator against real local HTTP servers: a fast one, a slow one that can
//! serve one request at a time, one that answers 500s, one that hangs up and one that never
//! answers; the merge of two runs' JSON; the chart PNG.

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use deckhand::loadgen::{self, ErrorKind, LatencyHistogram, Mode, Plan, Report, Target, chart};
use tokio::{io::AsyncReadExt, net::TcpListener, sync::Mutex};

async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn fast() -> String {
    serve(Router::new().route("/", get(|| async { "ok" }))).await
}

/// Takes 100 ms per request and serves one at a time: at most 10 requests per second.
async fn slow() -> String {
    let lock = Arc::new(Mutex::new(()));
    serve(
        Router::new()
            .route(
                "/",
                get(|State(lock): State<Arc<Mutex<()>>>| async move {
                    let _one_at_a_time = lock.lock().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    "slow"
                }),
            )
            .with_state(lock),
    )
    .await
}

/// Every other request gets a 500.
async fn erroring() -> String {
    let n = Arc::new(AtomicU64::new(0));
    serve(
        Router::new()
            .route(
                "/",
                get(|State(n): State<Arc<AtomicU64>>| async move {
                    match n.fetch_add(1, Ordering::Relaxed) % 2 {
                        0 => (StatusCode::OK, "ok"),
                        _ => (StatusCode::INTERNAL_SERVER_ERROR, "broken"),
                    }
                }),
            )
            .with_state(n),
    )
    .await
}

/// Reads the request, then closes the connection without a word.
async fn hangs_up() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            drop(s);
        }
    });
    format!("http://{addr}/")
}

/// Accepts connections and never answers.
async fn silent() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    format!("http://{addr}/")
}

fn plan(url: &str, mode: Mode, secs: f64) -> Plan {
    Plan {
        target: Target::new(url).unwrap(),
        mode,
        duration: Duration::from_secs_f64(secs),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_keeps_connections_busy() {
    let url = fast().await;
    let r = loadgen::run(&plan(&format!("{url}/"), Mode::concurrency(4).unwrap(), 1.0))
        .await
        .unwrap();
    assert!(
        r.responses() > 200,
        "only {} responses in a second on loopback",
        r.responses()
    );
    assert_eq!(r.status.get(&200), Some(&r.responses()));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.error_ratio(), 0.0);
    assert!(r.percentile(0.5) < Duration::from_millis(50), "{r}");
    let per_second: u64 = r.seconds.iter().map(|s| s.responses).sum();
    assert_eq!(per_second, r.responses());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_keeps_the_rate_and_counts_from_the_intended_start() {
    let url = slow().await;
    // 30 requests a second for 2 s against a target that can do 10: the queue grows, and
    // the latency people would see grows with it.
    let open = loadgen::run(&plan(&format!("{url}/"), Mode::rate(30.0).unwrap(), 2.0))
        .await
        .unwrap();
    assert_eq!(open.total(), 60, "{open}");
    assert_eq!(open.responses(), 60, "{open}");
    assert!(
        open.percentile(0.9) > Duration::from_millis(2_500),
        "a slow target must show in the open model's latency: {open}"
    );
    // The closed model with one connection only ever sees the service time: this is the
    // coordinated omission the open model avoids.
    let closed = loadgen::run(&plan(&format!("{url}/"), Mode::concurrency(1).unwrap(), 1.0))
        .await
        .unwrap();
    assert!(closed.percentile(0.9) < Duration::from_millis(300), "{closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_paces_a_fast_target() {
    let url = fast().await;
    let r = loadgen::run(&plan(&format!("{url}/"), Mode::rate(200.0).unwrap(), 1.5))
        .await
        .unwrap();
    assert_eq!(r.total(), 300, "{r}");
    assert!((r.achieved_rate() - 200.0).abs() < 1.0, "{r}");
    assert_eq!(r.seconds.len(), 2);
    assert_eq!(r.seconds[0].responses, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_transport_errors_are_counted_by_kind() {
    let url = erroring().await;
    let r = loadgen::run(&plan(&format!("{url}/"), Mode::rate(100.0).unwrap(), 1.0))
        .await
        .unwrap();
    assert_eq!(r.status.get(&200), Some(&50), "{r}");
    assert_eq!(r.status.get(&500), Some(&50), "{r}");
    assert!((r.error_ratio() - 0.5).abs() < 1e-9, "{r}");

    let r = loadgen::run(&plan(&hangs_up().await, Mode::rate(50.0).unwrap(), 1.0))
        .await
        .unwrap();
    assert_eq!(r.errors.get(&ErrorKind::Reset), Some(&50), "{r}");
    assert_eq!(r.responses(), 0);
    assert!(r.to_string().contains("reset 50"), "{r}");

    // Nothing listens on a port just released.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let r = loadgen::run(&plan(&refused, Mode::rate(20.0).unwrap(), 1.0))
        .await
        .unwrap();
    assert_eq!(r.errors.get(&ErrorKind::Connect), Some(&20), "{r}");

    let mut p = plan(&silent().await, Mode::rate(10.0).unwrap(), 1.0);
    p.timeout = Duration::from_millis(200);
    let r = loadgen::run(&p).await.unwrap();
    assert_eq!(r.errors.get(&ErrorKind::Timeout), Some(&10), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_merged_from_json_equal_one_histogram_of_all_samples() {
    let url = erroring().await;
    let a = loadgen::run(&plan(&format!("{url}/"), Mode::rate(80.0).unwrap(), 1.0))
        .await
        .unwrap();
    let b = loadgen::run(&plan(&format!("{url}/"), Mode::concurrency(2).unwrap(), 1.0))
        .await
        .unwrap();
    let from_json = |r: &Report| serde_json::from_str::<Report>(&serde_json::to_string(r).unwrap()).unwrap();
    let merged = Report::merge(&[from_json(&a), from_json(&b)]).unwrap();
    assert_eq!(merged.responses(), a.responses() + b.responses());
    assert_eq!(merged.latency.count(), a.latency.count() + b.latency.count());
    let mut both = a.latency.clone();
    both.merge(&b.latency).unwrap();
    assert_eq!(merged.latency, both);
    assert_eq!(merged.generators, 2);
    assert_eq!(
        merged.seconds[0].responses,
        a.seconds[0].responses + b.seconds[0].responses
    );

    // And sample by sample: record every latency once into one histogram and split across
    // two, then merge the two through JSON.
    let mut all = LatencyHistogram::overall();
    let mut halves = [LatencyHistogram::overall(), LatencyHistogram::overall()];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let us = 50 + x % 2_000_000;
        all.record_us(us);
        halves[(i % 2) as usize].record_us(us);
    }
    let json: Vec<String> = halves.iter().map(|h| serde_json::to_string(h).unwrap()).collect();
    let mut merged: LatencyHistogram = serde_json::from_str(&json[0]).unwrap();
    merged.merge(&serde_json::from_str(&json[1]).unwrap()).unwrap();
    assert_eq!(merged, all);
    for q in [0.5, 0.9, 0.99, 0.999] {
        assert_eq!(merged.quantile_us(q), all.quantile_us(q));
    }
    assert_eq!(
        serde_json::to_string(&merged).unwrap(),
        serde_json::to_string(&all).unwrap()
    );
}

#[test]
fn merging_different_targets_is_refused() {
    let a: Report = serde_json::from_value(serde_json::json!({
        "url": "http://a/", "method": "GET", "mode": "rate=1", "generators": 1, "elapsed_s": 1.0,
        "status": {}, "errors": {}, "latency": {"sigfig": 3, "buckets": []}, "seconds": []
    }))
    .unwrap();
    let mut b = a.clone();
    b.url = "http://b/".into();
    let e = Report::merge(&[a, b]).unwrap_err();
    assert!(e.to_string().contains("different targets"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_is_a_png_of_the_requested_size() {
    let url = slow().await;
    let r = loadgen::run(&plan(&format!("{url}/"), Mode::rate(15.0).unwrap(), 2.0))
        .await
        .unwrap();
    let png = chart::render(&r, "shop in checkout", 1000, 640).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1000, 640));
    assert!(png.len() > 5_000, "a chart with text and lines, not an empty image");
    assert!(chart::render(&r, "x", 10, 10).is_err(), "too small to draw on");
}

#[test]
fn the_cli_prints_json_that_parses_and_explains_bad_input() {
    let bin = env!("CARGO_BIN_EXE_deckhand");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt.block_on(fast());
    let out = Command::new(bin)
        .args([
            "loadgen",
            "--url",
            &format!("{url}/"),
            "--rate",
            "20",
            "--duration",
            "1s",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.responses(), 20);
    let out = Command::new(bin)
        .args([
            "loadgen",
            "--url",
            &format!("{url}/"),
            "--concurrency",
            "1",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("latency   p50"), "{text}");
    let out = Command::new(bin)
        .args([
            "loadgen",
            "--url",
            "https://example.test/",
            "--rate",
            "5",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("https:// targets are not supported"));
    let out = Command::new(bin)
        .args(["loadgen", "--url", &url, "--rate", "5", "--duration", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'soon' is not a duration"));
}

#[test]
fn the_cli_fails_when_every_request_failed() {
    let bin = env!("CARGO_BIN_EXE_deckhand");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{closed}/");
    let run = |extra: &[&str]| {
        Command::new(bin)
            .args([
                "loadgen",
                "--url",
                &url,
                "--rate",
                "10",
                "--duration",
                "1s",
                "--timeout",
                "2s",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error: all 10 requests to {url} failed (connect 10)")),
        "{stderr}"
    );
    // The report is still printed: a pod's log carries it to `loadtest`.
    let out = run(&["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r.responses(), r.failed_requests()), (0, 10));
}
