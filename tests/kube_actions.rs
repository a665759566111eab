//! Kubernetes actions through the API against the test API server: environments, deploys
//! with watched rollouts, approvals on prod, the reaper, and errors that read well.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::time::{Duration, Instant};

use cluster::{messages, outcome, start_on, state};
use support::backends;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn env_create_lands_every_default_and_rerunning_changes_nothing() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |_| {}).await;
        let done = env.run("alice", "env create checkout").await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        let msgs = messages(&done);
        for expected in [
            "✓ namespace checkout",
            "✓ ResourceQuota deckhand-quota",
            "✓ LimitRange deckhand-limits",
            "✓ NetworkPolicy deckhand-default-deny",
            "✓ RoleBinding deckhand-team: edit for developers",
        ] {
            assert!(
                msgs.iter().any(|m| m.starts_with(expected)),
                "missing {expected:?} in {msgs:#?}"
            );
        }
        assert!(
            outcome(&done).starts_with("environment checkout (dev) is ready; it expires at"),
            "{}",
            outcome(&done)
        );

        let ns = env.kube.get_object("/api/v1/namespaces/checkout").expect("namespace");
        let labels = &ns["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "deckhand");
        assert_eq!(labels["deckhand.dev/owner"], "alice");
        assert_eq!(labels["deckhand.dev/tier"], "dev");
        assert_eq!(labels["deckhand.dev/request"], done["request"]["id"]);
        assert!(
            ns["metadata"]["annotations"]["deckhand.dev/expires-at"]
                .as_str()
                .is_some()
        );
        let quota = env.object("resourcequotas", "checkout", "deckhand-quota");
        assert_eq!(quota["spec"]["hard"]["pods"], "20");
        assert_eq!(quota["spec"]["hard"]["requests.cpu"], "4");
        let limits = env.object("limitranges", "checkout", "deckhand-limits");
        assert_eq!(limits["spec"]["limits"][0]["default"]["memory"], "512Mi");
        assert_eq!(limits["spec"]["limits"][0]["defaultRequest"]["cpu"], "100m");
        let np = env.object("networkpolicies", "checkout", "deckhand-default-deny");
        assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["podSelector"], serde_json::json!({}));
        let rb = env.object("rolebindings", "checkout", "deckhand-team");
        assert_eq!(rb["roleRef"]["name"], "edit");
        assert_eq!(rb["subjects"][0]["name"], "deckhand:developers");

        let before = env.kube.resource_version();
        let again = env.run("alice", "env create checkout").await;
        assert_eq!(state(&again), "succeeded", "{again:#}");
        assert!(outcome(&again).contains("already existed"), "{}", outcome(&again));
        assert_eq!(
            env.kube.resource_version(),
            before,
            "re-running env create wrote nothing"
        );

        // Someone else's name is not theirs to take; a bad name never reaches the cluster.
        let bob = env.run("bob", "env create checkout").await;
        assert_eq!(
            (state(&bob), outcome(&bob).as_str()),
            ("failed", "environment checkout belongs to alice; pick another name")
        );
        let (s, v) = env.app.submit_as("alice", "env create Checkout_2").await;
        assert_eq!((s, v["error"]["argument"].as_str()), (400, Some("name")), "{v}");
        let (s, v) = env.app.submit_as("alice", "env create long dev 30d").await;
        assert_eq!(s, 201, "{v}");
        let long = env
            .app
            .wait_for_state(v["request"]["id"].as_str().unwrap(), &["failed"])
            .await;
        assert_eq!(
            outcome(&long),
            "30d is longer than the dev tier allows (7d); ask for less"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_watches_the_rollout_to_success() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |_| {}).await;
        assert_eq!(state(&env.run("alice", "env create shop").await), "succeeded");
        let done = env
            .run("alice", "deploy ghcr.io/acme/shop:1.4.2 to shop replicas=3 port=8080")
            .await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        let msgs = messages(&done);
        assert!(
            msgs.iter()
                .any(|m| m == "Deployment shop applied: 3 × ghcr.io/acme/shop:1.4.2"),
            "{msgs:#?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.ends_with("updated, 0 available") || m.contains("/3 updated")),
            "{msgs:#?}"
        );
        assert!(msgs.iter().any(|m| m == "3/3 updated, 3 available"), "{msgs:#?}");
        assert_eq!(
            outcome(&done),
            "shop is available in shop (3/3 updated, 3 available); reachable in the cluster at shop.shop.svc:8080"
        );
        let d = env.object("deployments", "shop", "shop");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["securityContext"]["runAsNonRoot"], true);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
        assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 8080);
        let svc = env.object("services", "shop", "shop");
        assert_eq!(svc["spec"]["ports"][0]["port"], 8080);

        // Status and logs answer at once.
        let (_, v) = env.app.submit_as("alice", "status shop in shop").await;
        let out = support::output_of(&v);
        assert!(
            out.starts_with("shop in shop: 3 of 3 ready, 3 available, image ghcr.io/acme/shop:1.4.2"),
            "{out}"
        );
        assert_eq!(out.matches("\n  pod shop-").count(), 3, "{out}");
        env.kube
            .set_pod_logs("shop", "shop-", "booting\nDB password=hunter2 ok\nlistening on :8080\n");
        let (_, v) = env.app.submit_as("alice", "logs shop in shop lines=5").await;
        let out = support::output_of(&v);
        assert!(out.contains("listening on :8080") && out.contains("==> shop-"), "{out}");
        assert!(!out.contains("hunter2") && out.contains("password=[redacted]"), "{out}");

        // Scale, restart and rollback each watch their own rollout.
        let scaled = env.run("alice", "scale shop in shop to 1").await;
        assert_eq!(
            (state(&scaled), outcome(&scaled).as_str()),
            ("succeeded", "shop in shop scaled to 1 (1/1 updated, 1 available)")
        );
        assert_eq!(env.object("deployments", "shop", "shop")["spec"]["replicas"], 1);
        let restarted = env.run("alice", "restart shop in shop").await;
        assert_eq!(state(&restarted), "succeeded", "{restarted:#}");
        assert!(env.object("deployments", "shop", "shop")["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string());
        assert_eq!(
            state(
                &env.run("alice", "deploy ghcr.io/acme/shop:1.5.0 to shop port=8080")
                    .await
            ),
            "succeeded"
        );
        let back = env.run("alice", "rollback shop in shop").await;
        assert_eq!(state(&back), "succeeded", "{back:#}");
        let image =
            env.object("deployments", "shop", "shop")["spec"]["template"]["spec"]["containers"][0]["image"].clone();
        assert_eq!(
            image, "ghcr.io/acme/shop:1.4.2",
            "rolled back to the version before 1.5.0"
        );
        env.app.shutdown().await;
    }
}

/// The shipped stall timer (90 s) and a deadline past it, so only fast failure can end a
/// broken deploy within 20 s.
fn shipped_stall_timer(c: &mut deckhand::configuration::Config) {
    c.kubernetes.stall_after = "90s".parse().expect("duration");
    c.kubernetes.rollout_deadline = "120s".parse().expect("duration");
}

/// Submits `text` as alice and waits for it to end, at most `limit` from the submission;
/// returns the request view and how long it took.
async fn ends_within(env: &cluster::Env, text: &str, limit: Duration) -> (serde_json::Value, Duration) {
    let submitted = Instant::now();
    let (status, v) = env.app.submit_as("alice", text).await;
    assert_eq!(status, 201, "{text}: {v}");
    let id = v["request"]["id"].as_str().expect("request id").to_owned();
    loop {
        let (_, v) = env.app.get_as("alice", &format!("/api/v1/requests/{id}")).await;
        if ["succeeded", "failed", "cancelled"].contains(&state(&v)) {
            return (v, submitted.elapsed());
        }
        assert!(
            submitted.elapsed() < limit,
            "{text}: still {} after {limit:?}: {v:#}",
            state(&v)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_image_fails_the_deploy_within_20s_and_says_why() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, shipped_stall_timer).await;
        assert_eq!(state(&env.run("alice", "env create pulls").await), "succeeded");
        let (done, took) = ends_within(&env, "deploy nginx:does-not-exist to pulls", Duration::from_secs(20)).await;
        assert_eq!(state(&done), "failed", "{done:#}");
        let why = outcome(&done);
        assert!(
            why.starts_with(
                "rollout of nginx in pulls failed: image \"nginx:does-not-exist\" could not be pulled for container nginx (pod nginx-"
            ),
            "{why}"
        );
        // The registry's answer, from the pod's status or the kubelet's warning.
        assert!(
            why.contains("ErrImagePull") || why.contains("ImagePullBackOff"),
            "{why}"
        );
        assert!(
            why.contains("failed to resolve reference \"docker.io/library/nginx:does-not-exist\"")
                && why.ends_with(": not found"),
            "{why}"
        );
        assert!(
            !why.contains("last events:") && why.lines().count() == 1,
            "one line, not an event dump: {why}"
        );
        eprintln!("failed after {took:?}:\n{why}");

        // The broken pods of that deploy do not fail the deploy that replaces them.
        let fixed = env.run("alice", "deploy nginx:1.27 to pulls").await;
        assert_eq!(state(&fixed), "succeeded", "{fixed:#}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_loop_fails_the_deploy_after_the_second_restart() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, shipped_stall_timer).await;
        assert_eq!(state(&env.run("alice", "env create crashes").await), "succeeded");
        let (done, took) = ends_within(
            &env,
            "deploy ghcr.io/acme/crashloop:2.0 to crashes as worker",
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(state(&done), "failed", "{done:#}");
        let why = outcome(&done);
        assert!(
            why.starts_with("rollout of worker in crashes failed: container worker (pod worker-"),
            "{why}"
        );
        assert!(
            why.contains("image \"ghcr.io/acme/crashloop:2.0\") is in CrashLoopBackOff after 2 restarts; it last ended with exit code 1 (Error)"),
            "{why}"
        );
        assert!(
            why.contains("\nlast log lines (worker-") && why.ends_with("\n  panic: config missing DATABASE_URL"),
            "{why}"
        );
        // It failed on what the cluster showed: the pod's second restart.
        let pods = env.kube.list_objects("pods", Some("crashes"));
        let cs = &pods[0]["status"]["containerStatuses"][0];
        assert!(cs["restartCount"].as_i64() >= Some(2), "{cs:#}");
        assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1, "{cs:#}");
        eprintln!("failed after {took:?}:\n{why}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prod_changes_wait_for_ops() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |_| {}).await;
        let pending = env.run("olga", "env create payments prod").await;
        assert_eq!(state(&pending), "pending_approval");
        assert!(
            env.kube.get_object("/api/v1/namespaces/payments").is_none(),
            "nothing before approval"
        );
        let id = pending["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("omar", &id).await;
        assert_eq!(state(&env.app.wait_for_state(&id, &["succeeded"]).await), "succeeded");

        // Prod refuses mutable tags at submission: nothing is stored.
        let (s, v) = env.app.submit_as("olga", "deploy nginx:latest to payments").await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("precondition")), "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("version tag or an @sha256 digest"),
            "{v}"
        );
        let (s, v) = env
            .app
            .submit_as("olga", "deploy evil.example.com/x:1 to payments")
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("images from evil.example.com are not allowed"),
            "{v}"
        );

        let pending = env.run("olga", "deploy nginx:1.27.3 to payments").await;
        assert_eq!(state(&pending), "pending_approval");
        let id = pending["request"]["id"].as_str().unwrap().to_owned();
        assert!(env.kube.object("deployments", "payments", "nginx").is_none());
        env.app.approve("otto", &id).await;
        let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        // Dev deploys need nobody.
        env.run("alice", "env create scratch").await;
        assert_eq!(
            state(&env.run("alice", "deploy nginx:latest to scratch").await),
            "succeeded"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_extend_delete_and_approval_for_someone_elses() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |_| {}).await;
        env.run("alice", "env create mine-1").await;
        env.run("bob", "env create bobs").await;
        let (_, v) = env.app.submit_as("alice", "env list all").await;
        let out = support::output_of(&v);
        assert!(
            out.starts_with("NAME") && out.contains("mine-1") && out.contains("bobs") && out.contains("alice"),
            "{out}"
        );
        let (_, v) = env.app.submit_as("alice", "env list").await;
        let out = support::output_of(&v);
        assert!(out.contains("mine-1") && !out.contains("bobs"), "{out}");

        let ext = env.run("alice", "env extend mine-1 3d").await;
        assert_eq!(state(&ext), "succeeded", "{ext:#}");
        let o = outcome(&ext);
        assert!(
            o.contains("now expires at") && (o.contains("(in 2d 23h)") || o.contains("(in 3d 0h)")),
            "{o}"
        );
        let too_long = env.run("alice", "env extend mine-1 30d").await;
        assert_eq!(outcome(&too_long), "30d is longer than the dev tier allows (7d)");

        let (s, v) = env.app.submit_as("alice", "env delete nosuch").await;
        assert_eq!(s, 422);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("there is no environment nosuch; create it with `env create nosuch`"),
            "{v}"
        );
        let (s, v) = env.app.submit_as("alice", "env delete kube-system").await;
        assert_eq!(s, 422, "deckhand never touches namespaces it did not create: {v}");

        let deleted = env.run("alice", "env delete mine-1").await;
        assert_eq!(state(&deleted), "succeeded", "{deleted:#}");
        let msgs = messages(&deleted);
        assert!(
            msgs.contains(&"namespace mine-1 is terminating".into())
                && msgs.contains(&"namespace mine-1 is gone".into()),
            "{msgs:#?}"
        );
        assert!(env.kube.get_object("/api/v1/namespaces/mine-1").is_none());

        // Deleting someone else's environment needs ops.
        let pending = env.run("alice", "env delete bobs").await;
        assert_eq!(state(&pending), "pending_approval");
        let id = pending["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("olga", &id).await;
        env.app.wait_for_state(&id, &["succeeded"]).await;
        assert!(env.kube.get_object("/api/v1/namespaces/bobs").is_none());
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reaper_warns_then_deletes_expired_environments() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |_| {}).await;
        let created = env.run("alice", "env create short dev 3s").await;
        assert_eq!(state(&created), "succeeded", "{created:#}");
        let id = created["request"]["id"].as_str().unwrap().to_owned();
        let gone = env
            .kube
            .wait_for(Duration::from_secs(15), |k| {
                k.get_object("/api/v1/namespaces/short").is_none()
            })
            .await;
        assert!(gone, "the reaper deleted the expired environment");
        // The reaper starts the namespace's deletion, then stores its line: wait for the line.
        let expired = |m: &String| m.starts_with("environment short expired at") && m.ends_with("is being deleted");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let msgs = loop {
            let (_, v) = env.app.get_as("alice", &format!("/api/v1/requests/{id}")).await;
            let msgs = messages(&v);
            if msgs.iter().any(expired) || tokio::time::Instant::now() >= deadline {
                break msgs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("environment short expires at") && m.contains("env extend short 8h")),
            "{msgs:#?}"
        );
        assert!(msgs.iter().any(expired), "{msgs:#?}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_errors_read_well() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        // Quota: the tier allows two pods; three replicas cannot all start.
        let env = start_on(backend, |c| {
            let dev = c.tiers.get_mut("dev").unwrap();
            dev.quota.insert("pods".into(), "2".into());
        })
        .await;
        env.run("alice", "env create tight").await;
        let done = env.run("alice", "deploy nginx:1.27 to tight replicas=3").await;
        assert_eq!(state(&done), "failed");
        assert!(
            outcome(&done).contains("quota deckhand-quota is exhausted"),
            "{}",
            outcome(&done)
        );

        // The bot's own RBAC.
        env.kube.forbid("patch", "resourcequotas");
        let done = env.run("alice", "env create denied").await;
        assert_eq!(state(&done), "failed");
        let why = outcome(&done);
        assert!(
            why.starts_with("deckhand's service account is not allowed to do this:")
                && why.contains("deploy/clusterrole.yaml"),
            "{why}"
        );
        env.kube.allow_all();

        // Transient errors are retried (500 here: kube-rs itself already retries 503s).
        env.kube.fail_next("PATCH", "/limitranges/", 500, "InternalError");
        assert_eq!(state(&env.run("alice", "env create flaky").await), "succeeded");

        // Not found.
        let done = env.run("alice", "status ghost in tight").await;
        assert_eq!(
            (state(&done), outcome(&done).as_str()),
            ("failed", "app ghost in tight not found")
        );
        env.app.shutdown().await;

        // Unreachable.
        let env = start_on(backend, |c| c.kubernetes.url = "http://127.0.0.1:9".into()).await;
        // Refused before anything is stored: env create checks the name is free first.
        for text in ["env create nowhere", "env delete nowhere"] {
            let (s, v) = env.app.submit_as("alice", text).await;
            assert_eq!(s, 422, "{v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("cannot reach the Kubernetes API"),
                "{v}"
            );
        }
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_role_covers_exactly_what_the_actions_call() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |_| {}).await;
        // Every action, including the reaper (a short TTL) and a failed rollout's diagnosis.
        let script = [
            ("alice", "env create rbac-a"),
            ("alice", "env create rbac-b dev 2s"),
            ("alice", "env list all"),
            ("alice", "env extend rbac-a 1d"),
            ("alice", "deploy ghcr.io/acme/shop:1.0 to rbac-a port=8080"),
            ("alice", "deploy ghcr.io/acme/shop:1.1 to rbac-a port=8080"),
            ("alice", "status shop in rbac-a"),
            ("alice", "logs shop in rbac-a"),
            ("alice", "exec shop in rbac-a -- echo rbac"),
            ("alice", "scale shop in rbac-a to 2"),
            ("alice", "restart shop in rbac-a"),
            ("alice", "rollback shop in rbac-a"),
            ("alice", "deploy ghcr.io/acme/crashloop:1 to rbac-a as bad"),
            ("alice", "proxy open shop in rbac-a ttl=10m"),
            ("alice", "proxy list"),
            ("alice", "service provision s3-bucket files in rbac-a"),
            ("alice", "service provision postgres db in rbac-a"),
            ("alice", "service provision dynamodb-table tbl in rbac-a"),
            ("alice", "service bind db to shop in rbac-a"),
            ("alice", "service list"),
            ("alice", "service list rbac-a"),
            ("alice", "service delete files in rbac-a"),
            ("alice", "service delete tbl in rbac-a"),
            ("alice", "service delete db in rbac-a force"),
            ("alice", "loadtest shop in rbac-a rate=2 duration=1s"),
        ];
        cluster::install_service_providers(&env.kube);
        let mut link = None;
        for (user, text) in script {
            let mut v = env.run(user, text).await;
            // Cost-bearing services and forced deletes wait for ops.
            if state(&v) == "pending_approval" {
                let id = v["request"]["id"].as_str().unwrap().to_owned();
                assert_eq!(env.app.approve("olga", &id).await.0, 200);
                v = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
            }
            // The fake's Job pods print no load summary here (tests/loadtest.rs runs real ones),
            // so the load test fails after making every call it makes.
            let may_fail = text.contains("crashloop") || text.starts_with("loadtest");
            assert!(state(&v) == "succeeded" || may_fail, "{text}: {v:#}");
            if text.starts_with("proxy open") {
                // The link is the requester's to read.
                let id = v["request"]["id"].as_str().unwrap();
                let (_, mine) = env.app.get_as(user, &format!("/api/v1/requests/{id}")).await;
                link = mine["events"]
                    .as_array()
                    .and_then(|es| es.iter().find_map(|e| e["data"]["url"].as_str()))
                    .map(str::to_owned);
            }
        }
        // A request through the proxy link, so the service proxy's verbs are used too.
        let link = link.expect("proxy open answers with the link");
        // public_url is the configured default; the test server listens elsewhere.
        let path = &link[link.find("/p/").unwrap()..];
        let through = format!("{}{}/", env.app.url, path.trim_end_matches('/'));
        let http = reqwest::Client::new();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let r = http
                .request(method.parse().unwrap(), &through)
                .body("x")
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{method} through the link: {r:?}");
        }
        assert_eq!(state(&env.run("alice", "env delete rbac-a").await), "succeeded");
        let reaped = env
            .kube
            .wait_for(Duration::from_secs(15), |k| {
                k.get_object("/api/v1/namespaces/rbac-b").is_none()
            })
            .await;
        assert!(reaped);

        let used = env.kube.rbac_usage();
        let granted = kube_fake::cluster_role_rules(include_str!("../deploy/clusterrole.yaml"));
        let missing: Vec<_> = used.difference(&granted).collect();
        assert!(missing.is_empty(), "deploy/clusterrole.yaml lacks {missing:?}");
        // (`bind` on the team roles is what the API server demands to create the RoleBindings;
        // no request shows it, so rules limited to resourceNames are left out of both sides.)
        let unused: Vec<_> = granted.difference(&used).collect();
        assert!(
            unused.is_empty(),
            "deploy/clusterrole.yaml grants more than the actions use: {unused:?}"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_follows_a_deploy_live() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |_| {}).await;
        let cli = |args: Vec<&'static str>| {
            let url = env.app.url.clone();
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
                    .args(args)
                    .env("DECKHAND_URL", url)
                    .env("DECKHAND_TOKEN", support::token("alice"))
                    .env_remove("DECKHAND_OUTPUT")
                    .output()
                    .unwrap()
            })
        };
        let o = cli(vec!["run", "env create cli-env"]).await.unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains("  ✓ namespace cli-env") && stdout.contains("environment cli-env (dev) is ready"),
            "{stdout}"
        );
        let o = cli(vec!["run", "deploy ghcr.io/acme/shop:2.0 to cli-env replicas=2"])
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains("  2/2 updated, 2 available") && stdout.contains("shop is available in cli-env"),
            "{stdout}"
        );
        let o = cli(vec!["run", "deploy ghcr.io/acme/does-not-exist:1 to cli-env as broken"])
            .await
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "a failed rollout exits 1");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("image \"ghcr.io/acme/does-not-exist:1\" could not be pulled"),
            "{stderr}"
        );
        env.app.shutdown().await;
    }
}

/// A namespace someone else made is refused at submission with a message that says why,
/// not as a missing permission, and nothing reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_deckhand_did_not_create_is_refused_before_any_write() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |_| {}).await;
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(env.kube.client());
        let foreign = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "payments", "labels": { "team": "payments" } }
        }))
        .expect("namespace");
        namespaces
            .create(&Default::default(), &foreign)
            .await
            .expect("an admin's namespace");
        let calls = env.kube.api_calls().len();

        let said = "'payments' is not an environment deckhand created; \
                    deckhand only acts in its own environments (see env list)";
        for text in [
            "deploy nginx:1.27 to payments",
            "deploy image=nginx:1.27 env=payments replicas=2",
            "status web in payments",
            "logs web in payments",
            "scale web in payments to 2",
            "env extend payments 2h",
            "env delete payments",
        ] {
            let (status, v) = env.app.submit_as("alice", text).await;
            assert_eq!(
                (status, v["error"]["message"].as_str()),
                (422, Some(said)),
                "{text}: {v}"
            );
        }

        // Only reads reached the API server (its own controllers may still touch the namespace).
        let writes: Vec<_> = env.kube.api_calls()[calls..]
            .iter()
            .filter(|(method, _)| method != "GET")
            .cloned()
            .collect();
        assert!(writes.is_empty(), "{writes:?}");
        assert!(env.kube.list_objects("deployments", Some("payments")).is_empty());
        let ns = env.kube.get_object("/api/v1/namespaces/payments").expect("still there");
        assert!(
            ns["metadata"]["labels"].get("app.kubernetes.io/managed-by").is_none(),
            "{ns}"
        );
        let (_, mine) = env.app.get_as("alice", "/api/v1/requests").await;
        assert_eq!(
            mine["requests"].as_array().map(Vec::len),
            Some(0),
            "nothing stored: {mine}"
        );
        env.app.shutdown().await;
    }
}
