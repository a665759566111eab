//! Load tests in the cluster, end to end: deckhand against the Kubernetes test API server,
//! whose Job pods run deckhand's real load generator (in-process, with the pod's own args)
//! against a real local HTTP server, so the logs deckhand reads are real loadgen JSON.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/discord/mod.rs"]
mod discord_fake;
#[path = "support/kube/mod.rs"]
mod kube_fake;
#[path = "support/slack/mod.rs"]
mod slack_fake;
mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use cluster::{Env, outcome, state};
use deckhand::loadgen::{self, Mode, Plan, Report, Target, parse_duration};
use kube_fake::pod_runner::RunFn;
use serde_json::Value;
use sqlx::Row;
use support::{Backend, backends};

const IMAGE: &str = "ghcr.io/acme/deckhand";

/// A local app: `/` answers at once, `/slow` after 30 ms, `/flaky` fails every 4th request.
async fn backend() -> String {
    let n = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                "slow"
            }),
        )
        .route(
            "/flaky",
            get(|State(n): State<Arc<AtomicU64>>| async move {
                match n.fetch_add(1, Ordering::Relaxed) % 4 {
                    3 => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::OK,
                }
            }),
        )
        .with_state(n);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// What the pod's container would do with its args: `deckhand loadgen --url U --rate R
/// --duration D --timeout T --json`, with the in-cluster host of U pointed at `backend`.
fn loadgen_pod(backend: String) -> RunFn {
    Arc::new(move |args: Vec<String>| {
        let backend = backend.clone();
        Box::pin(async move {
            let flag = |name: &str| {
                args.iter()
                    .position(|a| a == name)
                    .and_then(|i| args.get(i + 1))
                    .cloned()
                    .ok_or_else(|| format!("error: the pod has no {name}"))
            };
            if args.first().map(String::as_str) != Some("loadgen") || !args.contains(&"--json".to_owned()) {
                return Err(format!("error: unexpected args {args:?}"));
            }
            let url = flag("--url")?;
            let path = url
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_else(|| "/".into());
            let plan = Plan {
                target: Target::new(&format!("{backend}{path}")).map_err(|e| e.to_string())?,
                mode: Mode::rate(flag("--rate")?.parse().map_err(|_| "bad rate".to_owned())?)
                    .map_err(|e| e.to_string())?,
                duration: parse_duration(&flag("--duration")?).map_err(|e| e.to_string())?,
                timeout: parse_duration(&flag("--timeout")?).map_err(|e| e.to_string())?,
            };
            let mut report = loadgen::run(&plan).await.map_err(|e| format!("error: {e}"))?;
            // As the pod would have printed it: its own URL.
            report.url = url;
            Ok(format!("{}\n", serde_json::to_string(&report).unwrap()))
        })
    })
}

/// The cluster with an environment `lt` where `shop` is deployed with a Service on 8080,
/// and Job pods of deckhand's image running the real load generator.
async fn start_with(store: Backend, edit: impl FnOnce(&mut deckhand::configuration::Config)) -> Env {
    let env = cluster::start_on(store, edit).await;
    env.kube.set_pod_runner(IMAGE, loadgen_pod(backend().await));
    assert_eq!(state(&env.run("alice", "env create lt").await), "succeeded");
    let v = env.run("alice", "deploy ghcr.io/acme/shop:1.0 to lt port=8080").await;
    assert_eq!(state(&v), "succeeded", "{v:#}");
    env
}

fn result_event(v: &Value) -> Value {
    v["events"]
        .as_array()
        .and_then(|es| {
            es.iter()
                .find(|e| e["kind"] == "output" && e["data"]["verdict"].is_object())
        })
        .cloned()
        .unwrap_or_else(|| panic!("no result in {v:#}"))
}

/// The requester's private output with the chart and page links: the chart URL serves the
/// PNG, the page shows it inline, and someone else reading the request gets neither link.
async fn chart_and_page_links(env: &Env, v: &Value, chart: &str) {
    let links = v["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["data"]["chart"].is_string()))
        .unwrap_or_else(|| panic!("no chart links in {v:#}"));
    assert_eq!(links["data"]["private"], "requester", "{links:#}");
    let labels: Vec<&str> = links["data"]["link_buttons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["label"].as_str())
        .collect();
    assert_eq!(labels, ["Open chart", "Open page"]);
    let local = |url: &str| format!("{}{}", env.app.url, &url[url.find("/r/").expect("a page link")..]);
    let chart_url = local(links["data"]["chart"].as_str().unwrap());
    assert!(chart_url.ends_with(&format!("/files/{chart}")), "{chart_url}");
    let r = reqwest::get(&chart_url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let png = r.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let page = reqwest::get(local(links["data"]["page"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("/files/{chart}\"")), "the chart inline: {html}");
    let id = v["request"]["id"].as_str().unwrap();
    let (_, bobs) = env.app.get_as("bob", &format!("/api/v1/requests/{id}")).await;
    assert!(!bobs.to_string().contains("/r/"), "alice's links are hers: {bobs:#}");
}

async fn wait_job_gone(env: &Env, id: &str) {
    let name = format!("loadtest-{}", id.trim_start_matches("r-"));
    let gone = env
        .kube
        .wait_for(Duration::from_secs(10), |k| {
            k.object("jobs", "lt", &name).is_none()
                && k.list_objects("pods", Some("lt"))
                    .iter()
                    .all(|p| p["metadata"]["labels"]["deckhand.dev/request"] != id)
        })
        .await;
    assert!(gone, "the Job {name} and its pods are deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_test_posts_its_table_stores_results_and_compares_with_the_last_run() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start_with(store, |_| {}).await;
        let v = env
            .run(
                "alice",
                "loadtest shop:8080/slow in lt rate=40 duration=2s workers=2 p99<2s errors<1%",
            )
            .await;
        assert_eq!(state(&v), "succeeded", "{v:#}");
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        let e = result_event(&v);
        let data = &e["data"];
        // Two pods at 20/s each for 2 s: 80 requests, every one answered.
        assert_eq!(data["requests"], 80, "{data:#}");
        assert_eq!(data["report"]["generators"], 2);
        assert_eq!(data["url"], "http://shop.lt.svc:8080/slow");
        let p50 = data["latency_us"]["p50"].as_u64().unwrap();
        assert!(p50 >= 30_000, "the backend takes 30 ms: p50 {p50}us");
        assert_eq!(data["verdict"]["passed"], true);
        let table = e["message"].as_str().unwrap();
        assert!(
            table.contains("Load test of shop:8080/slow in lt: 40/s for 2s from 2 worker(s)"),
            "{table}"
        );
        for row in [
            "rate",
            "p50",
            "p90",
            "p99",
            "max",
            "errors",
            "errors by kind: none",
            "PASSED: pass p99<2s",
        ] {
            assert!(table.contains(row), "{row} in {table}");
        }
        let attachment = &data["attachment"];
        assert_eq!(attachment["content_type"], "image/png");
        let messages = cluster::messages(&v);
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("load generators:") && m.contains("of 2")),
            "progress while it runs: {messages:#?}"
        );
        wait_job_gone(&env, &id).await;
        chart_and_page_links(&env, &v, attachment["id"].as_str().unwrap()).await;

        // The row is in the store, per target.
        let pool = env.app.app().store.pool().clone();
        let row = sqlx::query("SELECT target, env, workers, passed, report FROM loadtests WHERE request_id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>("target"), "shop:8080/slow");
        assert_eq!(row.get::<i64, _>("passed"), 1);
        let stored: Report = serde_json::from_str(&row.get::<String, _>("report")).unwrap();
        assert_eq!(stored.total(), 80);

        // A second run of the same target: the table compares, and a threshold that cannot hold
        // fails the request with the reason.
        let v2 = env
            .run("alice", "loadtest shop:8080/slow in lt rate=20 duration=1s p50<1ms")
            .await;
        assert_eq!(state(&v2), "failed", "{v2:#}");
        assert!(
            outcome(&v2).starts_with("thresholds failed: p50<1ms (actual "),
            "{}",
            outcome(&v2)
        );
        let table = result_event(&v2)["message"].as_str().unwrap().to_owned();
        assert!(table.contains(&format!("previous ({id})")), "{table}");
        assert!(table.contains("FAILED: FAIL p50<1ms"), "{table}");
        assert!(table.contains('%'), "a change column: {table}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_are_counted_by_kind_and_fail_an_error_threshold() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start_with(store, |_| {}).await;
        let v = env
            .run("alice", "loadtest shop:8080/flaky in lt rate=40 duration=1s errors<5%")
            .await;
        assert_eq!(state(&v), "failed", "{v:#}");
        let e = result_event(&v);
        assert!(
            e["message"].as_str().unwrap().contains("errors by kind: HTTP 503 10"),
            "{e:#}"
        );
        assert!(outcome(&v).contains("errors<5% (actual 25.00%)"), "{}", outcome(&v));
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_pod_fails_the_test_with_its_log_and_the_job_is_deleted() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = cluster::start_on(store, |_| {}).await;
        env.kube.set_pod_runner(
            IMAGE,
            Arc::new(|_args| {
                Box::pin(async { Err("error: cannot resolve shop.lt.svc:8080: no such host".to_owned()) })
            }),
        );
        assert_eq!(state(&env.run("alice", "env create lt").await), "succeeded");
        let v = env
            .run("alice", "loadtest http://shop.lt.svc:8080/ in lt rate=5 duration=1s")
            .await;
        assert_eq!(state(&v), "failed", "{v:#}");
        let why = outcome(&v);
        assert!(
            why.contains("reported no result") && why.contains("cannot resolve shop.lt.svc:8080"),
            "{why}"
        );
        wait_job_gone(&env, v["request"]["id"].as_str().unwrap()).await;
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_running_test_deletes_its_job() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start_with(store, |_| {}).await;
        let (status, v) = env
            .app
            .submit_as("alice", "loadtest shop in lt rate=5 duration=60s")
            .await;
        assert_eq!(status, 201, "{v}");
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        let name = format!("loadtest-{}", id.trim_start_matches("r-"));
        assert!(
            env.kube
                .wait_for(Duration::from_secs(10), |k| k.object("jobs", "lt", &name).is_some())
                .await,
            "the Job is created"
        );
        // The thread offers a Cancel test button; a click runs its command as the clicker.
        let mut button = None;
        for _ in 0..100 {
            let (_, view) = env.app.get_as("alice", &format!("/api/v1/requests/{id}")).await;
            button = view["events"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|e| e["data"]["buttons"].as_array().and_then(|b| b.first()).cloned());
            if button.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let button = button.expect("a Cancel test button in the thread");
        assert_eq!(button["label"], "Cancel test");
        let command = button["command"].as_str().unwrap();
        assert_eq!(command, format!("cancel {id}"));
        let (status, v) = env.app.submit_as("alice", command).await;
        assert!(status == 201 || status == 200, "{v}");
        let v = env.app.wait_for_state(&id, &["cancelled", "failed", "succeeded"]).await;
        assert_eq!(state(&v), "cancelled", "{v:#}");
        wait_job_gone(&env, &id).await;
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_are_refused_before_anything_runs() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start_with(store, |c| c.loadtest.max_workers = 4).await;
        for (text, expect) in [
            (
                "loadtest shop in lt rate=100 duration=1s workers=5",
                "above loadtest.max_workers (4)",
            ),
            ("loadtest shop in lt rate=10 duration=2h", "above loadtest.max_duration"),
            ("loadtest shop in lt rate=10 duration=1s p99>1s", "is not a threshold"),
            (
                "loadtest https://shop/ in lt rate=10 duration=1s",
                "https:// targets are not supported",
            ),
            ("loadtest Shop! in lt rate=10 duration=1s", "neither an app's Service"),
            (
                "loadtest shop in lt rate=2 duration=1s workers=3",
                "under 1 request per second",
            ),
        ] {
            let (status, v) = env.app.submit_as("alice", text).await;
            // Refused at submission: 400 for the pattern, 422 for what the action checks.
            assert!(status == 400 || status == 422, "{text}: {status} {v}");
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(expect), "{text}: {message}");
        }
        let v = env.run("alice", "loadtest cart in lt rate=5 duration=1s").await;
        assert_eq!(state(&v), "failed");
        assert!(
            outcome(&v).contains("there is no Service cart in lt"),
            "{}",
            outcome(&v)
        );
        assert!(env.kube.list_objects("jobs", Some("lt")).is_empty(), "no Job was made");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prod_and_outside_load_tests_wait_for_ops() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = cluster::start_on(store, |_| {}).await;
        let (_, v) = env.app.submit_as("olga", "env create big prod").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("omar", &id).await;
        env.app.wait_for_state(&id, &["succeeded"]).await;
        let v = env
            .run("alice", "loadtest http://shop.big.svc/ in big rate=5 duration=1s")
            .await;
        assert_eq!(state(&v), "pending_approval", "{v:#}");
        assert!(env.kube.list_objects("jobs", Some("big")).is_empty());
        // Load sent outside the environment waits for ops too, whatever the tier.
        assert_eq!(state(&env.run("alice", "env create scratch").await), "succeeded");
        let v = env
            .run(
                "alice",
                "loadtest http://shop.other.svc:8080/ in scratch rate=5 duration=1s",
            )
            .await;
        assert_eq!(state(&v), "pending_approval", "{v:#}");
        assert!(env.kube.list_objects("jobs", Some("scratch")).is_empty());
        env.app.shutdown().await;
    }
}

#[test]
fn the_cli_gate_exits_by_the_verdict() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = rt.block_on(start_with(store, |_| {}));
        let bin = env!("CARGO_BIN_EXE_deckhand");
        let gate = |thresholds: &[&str], extra: &[&str]| {
            let mut cmd = std::process::Command::new(bin);
            cmd.args([
                "loadtest",
                "shop",
                "--env",
                "lt",
                "--rate",
                "10",
                "--duration",
                "1s",
                "--wait",
            ])
            .env("DECKHAND_URL", &env.app.url)
            .env("DECKHAND_TOKEN", support::token("alice"));
            for t in thresholds {
                cmd.args(["--threshold", t]);
            }
            cmd.args(extra).output().unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("chart.png");
        let pass = gate(&["p99<5s", "errors<1%"], &["--chart", chart.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&pass.stdout);
        assert_eq!(
            pass.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&pass.stderr)
        );
        assert!(
            stdout.contains("PASSED: pass p99<5s") && stdout.contains("p50"),
            "{stdout}"
        );
        let png = std::fs::read(&chart).expect("the chart is saved");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let fail = gate(&["p99<1us"], &["--output", "json"]);
        assert_eq!(fail.status.code(), Some(1), "{}", String::from_utf8_lossy(&fail.stderr));
        let json: Value = serde_json::from_slice(&fail.stdout).unwrap();
        assert_eq!(json["verdict"]["passed"], false);
        assert_eq!(json["request"]["state"], "failed");
        assert_eq!(json["report"]["status"]["200"], 10);
        assert!(String::from_utf8_lossy(&fail.stderr).contains("thresholds failed"));
        // No such file: 404 with what to do.
        let id = json["request"]["id"].as_str().unwrap();
        let (status, v) = rt.block_on(
            env.app
                .get_as("bob", &format!("/api/v1/requests/{id}/attachments/a-nope")),
        );
        assert_eq!(status, 404, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("has no attachment a-nope")
        );
        let typo = gate(&["p99 > 1s"], &[]);
        assert_eq!(typo.status.code(), Some(2), "a typo: the test did not run");
        assert!(String::from_utf8_lossy(&typo.stderr).contains("is not a threshold"));
        rt.block_on(env.app.shutdown());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn from_slack_the_thread_gets_the_table_the_chart_and_the_verdict() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let slack = slack_fake::FakeSlack::start().await;
        let api_url = slack.api_url();
        let env = start_with(store, move |c| {
            c.slack = deckhand::slack::SlackConfig {
                bot_token: slack_fake::BOT_TOKEN.into(),
                signing_secret: slack_fake::SIGNING_SECRET.into(),
                api_url,
                progress_interval_ms: 100,
                ..Default::default()
            };
        })
        .await;
        let channel = "C0LOADTEST";
        let body = slack_fake::command_form(
            &support::slack_id("alice"),
            channel,
            // As Slack sends it: `<` and `>` in slash-command text arrive as HTML entities.
            "loadtest shop in lt rate=20 duration=1s p99&lt;5s",
            "t-load",
            &slack.response_url("t-load"),
        );
        let resp = reqwest::Client::new()
            .post(format!("{}/slack/commands", env.app.url))
            .header("content-type", "application/x-www-form-urlencoded");
        let resp = slack_fake::signed_headers(&body, slack_fake::now())
            .into_iter()
            .fold(resp, |r, (k, v)| r.header(k, v))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let calls = slack
            .wait_for(20, "the chart upload", |cs| {
                cs.iter().any(|c| c.method == "files.completeUploadExternal")
            })
            .await;
        let root = calls
            .iter()
            .find(|c| c.method == "chat.postMessage" && c.body["thread_ts"].is_null())
            .expect("root message");
        let root_ts = root.ts.clone().unwrap();
        let table = calls
            .iter()
            .filter(|c| c.method == "chat.postMessage" && c.body["thread_ts"] == root_ts.as_str())
            .filter_map(|c| c.body["text"].as_str())
            .find(|t| t.contains("Load test of shop in lt"))
            .unwrap_or_else(|| panic!("the table in the thread: {calls:#?}"));
        assert!(
            // mrkdwn-escaped even in the code block (Slack shows `p99<5s`).
            table.contains("p99") && table.contains("PASSED: pass p99&lt;5s"),
            "{table}"
        );
        let complete = calls
            .iter()
            .find(|c| c.method == "files.completeUploadExternal")
            .unwrap();
        assert_eq!(complete.body["channel_id"], channel);
        assert_eq!(
            complete.body["thread_ts"],
            root_ts.as_str(),
            "the chart goes into the thread"
        );
        // The chart and page links: to alice alone, never in the channel.
        let alice = support::slack_id("alice");
        slack
            .wait_for(20, "the chart and page links, ephemeral to alice", |cs| {
                cs.iter().any(|c| {
                    c.method == "chat.postEphemeral"
                        && c.ts.is_some()
                        && c.body["user"] == alice.as_str()
                        && c.body["thread_ts"] == root_ts.as_str()
                        && c.body["blocks"].to_string().contains("Open chart")
                        && c.body["blocks"].to_string().contains("/r/")
                })
            })
            .await;
        for c in slack.public_messages() {
            assert!(
                !c.body.to_string().contains("/r/"),
                "a page link in the channel: {:?}",
                c.body
            );
        }
        let uploads = slack.uploads();
        assert_eq!(uploads.len(), 1);
        let png = &uploads[0].1;
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1000);
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn from_discord_the_chart_is_attached_to_a_follow_up() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let discord = discord_fake::FakeDiscordServer::start().await;
        let signer = discord_fake::InteractionSigner::generate();
        let (public_key, api_base) = (signer.public_key_hex(), discord.api_base());
        let env = start_with(store, move |c| {
            c.discord.public_key = public_key;
            c.discord.application_id = discord_fake::APPLICATION_ID.into();
            c.discord.bot_token = discord_fake::BOT_TOKEN.into();
            c.discord.api_base = api_base;
        })
        .await;
        let (id, token) = discord_fake::new_interaction();
        let payload = discord_fake::command_payload(
            &id,
            &token,
            &support::discord_id("alice"),
            &[],
            &["loadtest"],
            &[
                ("target", serde_json::json!("shop")),
                ("env", serde_json::json!("lt")),
                ("rate", serde_json::json!(20)),
                ("duration", serde_json::json!("1s")),
                ("thresholds", serde_json::json!("p99<5s")),
            ],
        );
        discord.fake.issue_token_to(&token, &support::discord_id("alice"));
        let body = payload.to_string();
        let ts = discord_fake::unix_now().to_string();
        let resp = reqwest::Client::new()
            .post(format!("{}/discord/interactions", env.app.url))
            .header("content-type", "application/json")
            .header("x-signature-timestamp", &ts)
            .header("x-signature-ed25519", signer.sign(&ts, body.as_bytes()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let with_file = |f: &discord_fake::FakeDiscord| {
            f.calls()
                .into_iter()
                .find(|c| c.method == "POST" && c.body["_files"].as_array().is_some_and(|a| !a.is_empty()))
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let call = loop {
            if let Some(c) = with_file(&discord.fake) {
                break c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no file posted: {:#?}",
                discord.fake.calls()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(call.path, format!("/webhooks/{}/{token}", discord_fake::APPLICATION_ID));
        let file = &call.body["_files"][0];
        assert_eq!(file["head"], "89504e470d0a1a0a", "a PNG: {file}");
        assert!(file["size"].as_u64().unwrap() > 5_000);
        assert_eq!(call.body["attachments"][0]["filename"], file["filename"]);
        let table_posted = discord.fake.calls().iter().any(|c| {
            c.body["content"]
                .as_str()
                .is_some_and(|t| t.contains("Load test of shop in lt") && t.contains("PASSED"))
        });
        assert!(table_posted, "the table: {:#?}", discord.fake.calls());
        // The chart and page links: an ephemeral follow-up to alice, never the channel.
        let alice = support::discord_id("alice");
        discord
            .fake
            .wait_until("the chart and page links, to alice alone", |f| {
                f.private_to(&alice).iter().any(|m| {
                    let c = m.components.to_string();
                    m.flags & discord_fake::EPHEMERAL != 0 && c.contains("Open chart") && c.contains("/r/")
                })
            })
            .await;
        for m in discord.fake.public() {
            assert!(
                !m.content.contains("/r/") && !m.components.to_string().contains("/r/"),
                "a page link in the channel: {m:#?}"
            );
        }
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_and_attachments_are_stored_on_both_backends() {
    use deckhand::{
        attachments::Attachments,
        loadgen::Verdict,
        loadtest::results::{NewRun, Results},
    };
    let report: Report = serde_json::from_value(serde_json::json!({
        "url": "http://shop.lt.svc:8080/", "method": "GET", "mode": "rate=10", "generators": 1,
        "elapsed_s": 1.0, "status": {"200": 10}, "errors": {"timeout": 1},
        "latency": {"sigfig": 3, "buckets": [[1000, 4], [2047, 6]]}, "seconds": []
    }))
    .unwrap();
    let verdict = Verdict::of(&["p99<1s".parse().unwrap()], &report);
    for backend in support::backends() {
        let db = support::TestDb::new(backend).await;
        let store = db.store(2).await;
        let results = Results::new(store.pool().clone());
        for id in ["r-first", "r-second"] {
            results
                .insert(&NewRun {
                    request_id: id,
                    env: "lt",
                    target: "shop",
                    url: &report.url,
                    requester: "alice",
                    workers: 1,
                    report: &report,
                    verdict: &verdict,
                })
                .await
                .unwrap();
            // Distinct times: the next run is stored once the clock (ms) has moved past this one.
            let stored_by = deckhand::domain::now_ms();
            while deckhand::domain::now_ms() <= stored_by {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let previous = results.previous("lt", "shop", "r-third").await.unwrap().unwrap();
        assert_eq!(previous.request_id, "r-second", "{backend:?}");
        assert_eq!(previous.report, report, "{backend:?}");
        assert!(results.previous("lt", "cart", "r-x").await.unwrap().is_none());
        assert_eq!(results.count("lt", "shop").await.unwrap(), 2);
        let files = Attachments::new(store.pool().clone());
        let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let a = files
            .put("r-first", "x.png", "image/png", "chart", &bytes)
            .await
            .unwrap();
        assert_eq!(files.get(&a.id).await.unwrap(), Some(bytes), "{backend:?}");
        assert_eq!(files.get("a-missing").await.unwrap(), None);
        store.close().await;
    }
}
