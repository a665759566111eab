//! The chaos tests' real deploys: the built-in `deploy` (commands/app.yaml, `app.deploy`:
//! a server-side apply of a Deployment, then a watched rollout) into environments that
//! deckhand itself created before the traffic, so they carry its labels and tiers: two dev
//! environments per developer (a deploy there runs at once) and one prod environment (a
//! deploy there waits for one ops approval). Each deploy names its app after its job, so each
//! Deployment belongs to one request.
//!
//! Exactly once, as the test API server saw it: it records the path of every server-side
//! apply (`KubeTestServer::applies`). A deploy that succeeded applied its Deployment once,
//! or, when the store shows k takeovers (`resuming` events), between once and 1 + k times
//! (the action is rerunnable: a takeover applies the same object again); its Deployment is
//! there, carries its request id, and is rolled out (one replica updated and available).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{effect::tries, kube_fake::KubeTestServer, rig::Rig};

/// The prod environment every approval-gated real deploy goes to (owned by alice).
pub const PROD_ENV: &str = "prod-chaos";

/// The dev environment `user`'s job `n` deploys to (their own: no approval).
pub fn dev_env(user: &str, n: usize) -> String {
    format!("dev-{user}-{}", n % 2)
}

/// Creates the environments through deckhand as the API would (a developer asks, ops
/// approves prod) and waits until each succeeded; the texts of the requests it stored.
pub async fn environments(rig: &Rig) -> Vec<String> {
    let mut texts = Vec::new();
    for user in ["alice", "bob"] {
        for n in 0..2 {
            let text = format!("env create {} dev", dev_env(user, n));
            create(rig, user, &text, None).await;
            texts.push(text);
        }
    }
    let text = format!("env create {PROD_ENV} prod");
    create(rig, "alice", &text, Some("olga")).await;
    texts.push(text);
    texts
}

async fn create(rig: &Rig, user: &str, text: &str, approver: Option<&str>) {
    let (status, v) = rig.api_submit(0, user, text, &format!("setup-{text}")).await;
    assert!(status == 201 || status == 200, "{text}: {status} {v}");
    let id = v["request"]["id"].as_str().expect("a request id").to_owned();
    if let Some(approver) = approver {
        wait(rig, &id, "pending_approval").await;
        let http = rig.http.clone();
        let path = format!("/api/v1/requests/{id}/approve");
        let (status, v) = rig
            .send(0, |url, _| {
                http.post(format!("{url}{path}"))
                    .bearer_auth(crate::support::token(approver))
            })
            .await;
        assert_eq!(status, 200, "{text}: approving: {v}");
    }
    wait(rig, &id, "succeeded").await;
}

/// Waits until request `id` is in `state`; fails the test if it ends otherwise or takes 20 s.
async fn wait(rig: &Rig, id: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = rig.get(&format!("/api/v1/requests/{id}")).await;
        let now = v["request"]["state"].as_str().unwrap_or_default();
        if now == state {
            return;
        }
        assert!(
            !crate::terminal(now) && Instant::now() < deadline,
            "setup request {id} is {now}, not {state}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the stored request is a real deploy (not the chaos effect).
pub fn is_deploy(view: &Value) -> bool {
    view["request"]["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("deploy "))
}

fn deployment_path(env: &str, app: &str) -> String {
    format!("/apis/apps/v1/namespaces/{env}/deployments/{app}")
}

/// The server-side applies of Deployments, by path.
pub struct Applies(HashMap<String, usize>);

impl Applies {
    pub fn of(kube: &KubeTestServer) -> Applies {
        let mut by_path = HashMap::new();
        for path in kube.applies() {
            if path.starts_with("/apis/apps/v1/namespaces/") && path.contains("/deployments/") {
                *by_path.entry(path).or_default() += 1;
            }
        }
        Applies(by_path)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} Deployments from {} applies",
            self.0.len(),
            self.0.values().sum::<usize>()
        )
    }

    /// Applies to Deployments no deploy among `views` owns.
    pub fn strays(&self, views: &[Value]) -> Vec<String> {
        let ours: Vec<String> = views
            .iter()
            .filter(|v| is_deploy(v))
            .map(|v| {
                let args = &v["request"]["args"];
                deployment_path(
                    args["env"].as_str().unwrap_or_default(),
                    args["app"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        self.0
            .iter()
            .filter(|(p, _)| !ours.contains(p))
            .map(|(p, n)| format!("{n} applies of {p}, of no stored deploy"))
            .collect()
    }
}

/// Exactly once for a real deploy (see the module doc); `None` when it holds.
pub fn check(view: &Value, applies: &Applies, kube: &KubeTestServer) -> Option<String> {
    let r = &view["request"];
    let (id, state) = (r["id"].as_str().unwrap_or(""), r["state"].as_str().unwrap_or(""));
    let (env, app) = (
        r["args"]["env"].as_str().unwrap_or_default(),
        r["args"]["app"].as_str().unwrap_or_default(),
    );
    let outcome = r["outcome"].as_str().unwrap_or_default();
    let n = applies.0.get(&deployment_path(env, app)).copied().unwrap_or(0);
    let tries = tries(view);
    let attempts = r["attempts"].as_i64().unwrap_or(-1);
    let once = if tries == 1 { n == 1 } else { (1..=tries).contains(&n) };
    let object = kube.object("deployments", env, app);
    let owner = object
        .as_ref()
        .map(|d| d["metadata"]["annotations"]["deckhand.dev/request"].clone());
    let rolled_out = object.as_ref().is_some_and(|d| {
        d["status"]["observedGeneration"].as_i64() >= d["metadata"]["generation"].as_i64()
            && d["status"]["updatedReplicas"] == 1
            && d["status"]["availableReplicas"] == 1
            && d["spec"]["replicas"] == 1
    });
    let fine = state == "succeeded"
        && once
        && attempts == tries as i64
        && owner.as_ref().is_some_and(|o| o == id)
        && rolled_out
        && outcome.starts_with(&format!("{app} is available in {env} "));
    (!fine).then(|| {
        format!(
            "{id} ({}) ended {state} ({outcome:?}): {n} applies of Deployment {env}/{app} (its request: {owner:?}, rolled out: {rolled_out}) in the test API server, started {attempts} times, {} takeovers",
            r["text"],
            tries - 1
        )
    })
}
