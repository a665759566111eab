//! pod.exec against the test API server: a one-off command in a ready pod of an app, over
//! kube's WebSocket exec, with its output, exit code and timeout.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::time::{Duration, Instant};

use cluster::{Env, outcome, output_data, state};
use support::{Backend, backends, output_of};

/// deckhand against a fresh test server, with `shop` deployed and ready in `ex`.
async fn start_with(backend: Backend, edit: impl FnOnce(&mut deckhand::configuration::Config)) -> Env {
    let env = cluster::start_on(backend, edit).await;
    for text in ["env create ex", "deploy ghcr.io/acme/shop:1.0 to ex"] {
        let v = env.run("alice", text).await;
        assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
    }
    env
}

async fn start(backend: Backend) -> Env {
    start_with(backend, |_| {}).await
}

/// The argv of every exec the test server received, in order.
fn execs(env: &Env) -> Vec<Vec<String>> {
    env.kube
        .requests_with_query()
        .into_iter()
        .filter(|(_, path, _)| path.ends_with("/exec"))
        .map(|(_, _, query)| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
                .unwrap()
                .into_iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v)
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_posts_its_output_and_exit_code_zero() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend).await;
        let done = env.run("alice", "exec shop in ex -- echo hello world").await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        assert!(
            outcome(&done).starts_with("exited with 0 in pod shop-"),
            "{}",
            outcome(&done)
        );
        let out = output_of(&done);
        assert!(out.contains("exited with 0\n```\nhello world\n```"), "{out}");
        assert!(!out.contains("stderr"), "{out}");
        assert_eq!(execs(&env), [["echo", "hello", "world"]]);
        let data = output_data(&done);
        assert_eq!(data["exit_code"], 0);
        assert_eq!(data["stdout"], "hello world\n");

        // The pod it ran in is a ready pod of the app: the scripted shell names it.
        let host = env.run("alice", "exec shop in ex -- cat /etc/hostname").await;
        let pod = output_data(&host)["pod"].as_str().unwrap().to_owned();
        assert!(output_of(&host).contains(&format!("```\n{pod}\n```")), "{host:#}");
        let p = env.kube.object("pods", "ex", &pod).expect("the pod exists");
        assert_eq!(p["metadata"]["labels"]["app.kubernetes.io/name"], "shop");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_command_fails_the_request_with_its_exit_code_and_stderr() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend).await;
        let done = env
            .run("alice", r#"exec shop in ex -- sh -c "echo oops >&2; exit 3""#)
            .await;
        assert_eq!(state(&done), "failed", "{done:#}");
        assert!(
            outcome(&done).starts_with("exited with 3 in pod shop-"),
            "{}",
            outcome(&done)
        );
        let out = output_of(&done);
        assert!(out.contains("exited with 3"), "{out}");
        assert!(out.contains("stderr:\n```\noops\n```"), "{out}");
        assert_eq!(output_data(&done)["exit_code"], 3);
        assert_eq!(execs(&env), [["sh", "-c", "echo oops >&2; exit 3"]]);

        // The whole output, as a download from the API, by stream.
        let id = done["request"]["id"].as_str().unwrap();
        let download = |q: &str| {
            let url = format!("{}/api/v1/requests/{id}/output{q}", env.app.url);
            let req = env.app.http.get(url).bearer_auth(support::token("alice"));
            async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let disposition = r
                    .headers()
                    .get("content-disposition")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                (status, disposition, r.text().await.unwrap())
            }
        };
        let (status, disposition, body) = download("?stream=stderr").await;
        assert_eq!((status, body.as_str()), (200, "oops\n"));
        assert_eq!(disposition, format!("attachment; filename=\"{id}.txt\""));
        assert_eq!(download("?stream=stdout").await.2, "");
        assert_eq!(download("").await.2, "oops\n");
        let (status, _, body) = download("?stream=both").await;
        assert_eq!(status, 400);
        assert!(body.contains("stream must be stdout, stderr or all"), "{body}");

        // The plain form from the issue, and a command the container does not have.
        let three = env.run("alice", r#"exec shop in ex -- sh -c "exit 3""#).await;
        assert_eq!(
            (state(&three), output_data(&three)["exit_code"].as_i64()),
            ("failed", Some(3))
        );
        let missing = env.run("alice", "exec shop in ex -- nosuch --flag").await;
        assert!(outcome(&missing).starts_with("exited with 127"), "{missing:#}");
        assert!(output_of(&missing).contains("nosuch: command not found"), "{missing:#}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_running_past_exec_timeout_times_out() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_with(backend, |c| c.kubernetes.exec_timeout = "1s".parse().unwrap()).await;
        let started = Instant::now();
        let done = env.run("alice", "exec shop in ex -- sleep 5").await;
        assert_eq!(
            (state(&done), outcome(&done).as_str()),
            ("failed", "timed out after 1s"),
            "{done:#}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "took {:?}",
            started.elapsed()
        );
        // Within the timeout a sleep is fine.
        let short = env.run("alice", "exec shop in ex -- sleep 0.2").await;
        assert_eq!(state(&short), "succeeded", "{short:#}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quoted_words_arrive_as_one_argument_and_nothing_is_interpolated() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend).await;
        let done = env.run("alice", r#"exec shop in ex -- echo "a b" c"#).await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        let literal = env.run("alice", r"exec shop in ex -- echo '$HOME' \; x\ y").await;
        assert_eq!(state(&literal), "succeeded", "{literal:#}");
        assert_eq!(
            execs(&env),
            [vec!["echo", "a b", "c"], vec!["echo", "$HOME", ";", "x y"]]
        );
        assert_eq!(output_data(&done)["argv"], serde_json::json!(["echo", "a b", "c"]));

        // An unbalanced quote is refused at submission, before anything reaches the cluster.
        env.kube.reset_requests();
        let (s, v) = env.app.submit_as("alice", r#"exec shop in ex -- echo "a"#).await;
        assert!(s >= 400, "{s} {v}");
        assert!(v.to_string().contains("unterminated \\\" quote"), "{v}");
        assert!(execs(&env).is_empty());
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_ready_pod_or_no_such_app_reads_well() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend).await;
        // Its pods never pull their image, so none is ready.
        let bad = env
            .run("alice", "deploy ghcr.io/acme/does-not-exist:1 to ex as broken")
            .await;
        assert_eq!(state(&bad), "failed", "{bad:#}");
        let done = env.run("alice", "exec broken in ex -- echo hi").await;
        assert_eq!(state(&done), "failed", "{done:#}");
        let o = outcome(&done);
        assert!(
            o.starts_with("broken in ex has no ready pod to run the command in (pods: broken-"),
            "{o}"
        );
        assert!(o.contains("ImagePullBackOff") || o.contains("ErrImagePull"), "{o}");

        let none = env.run("alice", "exec nothere in ex -- echo hi").await;
        assert_eq!(
            (state(&none), outcome(&none).as_str()),
            ("failed", "app nothere in ex not found")
        );
        assert!(execs(&env).is_empty(), "no exec was attempted");

        // RBAC denial reads as such.
        env.kube.forbid("create", "pods/exec");
        let denied = env.run("alice", "exec shop in ex -- echo hi").await;
        assert!(
            outcome(&denied).starts_with("deckhand's service account is not allowed to do this"),
            "{denied:#}"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_in_prod_waits_for_ops() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend).await;
        for text in ["env create payments prod", "deploy nginx:1.27.3 to payments"] {
            let pending = env.run("olga", text).await;
            assert_eq!(state(&pending), "pending_approval", "{text}: {pending:#}");
            let id = pending["request"]["id"].as_str().unwrap().to_owned();
            env.app.approve("omar", &id).await;
            let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
            assert_eq!(state(&done), "succeeded", "{text}: {done:#}");
        }
        let pending = env.run("alice", "exec nginx in payments -- echo hi").await;
        assert_eq!(state(&pending), "pending_approval", "{pending:#}");
        assert!(execs(&env).is_empty(), "nothing runs before approval");
        let id = pending["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("otto", &id).await;
        let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        assert_eq!(execs(&env), [["echo", "hi"]]);
        env.app.shutdown().await;
    }
}
