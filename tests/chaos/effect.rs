//! The chaos tests' countable effect in the cluster: `effect IMAGE to ENV` runs
//! `chaos.effect`, which creates one ConfigMap, `effect-<request id>`, in the Kubernetes test
//! API server the replicas share. The action is rerunnable, so a request whose replica died
//! mid-run is run again after the takeover; the object's name comes from the request id, so
//! a rerun whose earlier run already created it gets 409 AlreadyExists and counts as done.
//! The create's `fieldManager` names the request, so the test API server's recorded
//! requests tell how many times each request tried it.

use std::sync::Arc;

use ::kube::api::{Api, PostParams};
use async_trait::async_trait;
use deckhand::{
    actions::{Action, ActionContext, ActionError},
    configuration::Config,
    startup::Builder,
};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use crate::{
    kube_fake::KubeTestServer,
    support::{self, TestApp, actions::Probe},
};

const NAMESPACE: &str = "default";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

const SPECS: &str = r#"
- name: effect
  help: Chaos action whose effect is one ConfigMap in the cluster per request
  pattern: '^effect (?P<image>\S+) to (?P<env>\S+)(?: tier=(?P<tier>\S+))?$'
  args:
    image: { type: image }
    env: { type: name }
    tier: { type: tier, default: dev }
  action: chaos.effect
  allow: [group:developers]
  approval: { when: "tier == 'prod'", approvers: [group:ops], count: 1, expires: 1h }
"#;

/// The ConfigMap request `id`'s effect is.
pub fn object_name(id: &str) -> String {
    format!("effect-{id}")
}

fn field_manager(id: &str) -> String {
    format!("chaos-effect-{id}")
}

/// Creates the request's ConfigMap; counts its runs in the probe (per env).
struct Effect {
    kube: ::kube::Client,
    probe: Arc<Probe>,
}

#[async_trait]
impl Action for Effect {
    fn name(&self) -> &'static str {
        "chaos.effect"
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let id = ctx.request.id.as_str();
        let env = ctx.request.args.get("env").unwrap_or("-").to_owned();
        let run = {
            let mut runs = self.probe.by_env.lock().expect("lock");
            let n = runs.entry(env.clone()).or_default();
            *n += 1;
            *n
        };
        ctx.progress(format!("effect for {env}")).await?;
        let name = object_name(id);
        let object: ConfigMap = serde_json::from_value(json!({
            "metadata": { "name": name },
            "data": { "request": id, "env": env, "run": run.to_string() },
        }))
        .map_err(|e| ActionError::Failed(e.to_string()))?;
        let params = PostParams {
            field_manager: Some(field_manager(id)),
            ..PostParams::default()
        };
        let api: Api<ConfigMap> = Api::namespaced(self.kube.clone(), NAMESPACE);
        match api.create(&params, &object).await {
            Ok(_) => Ok(format!("created {name}")),
            Err(::kube::Error::Api(s)) if s.code == 409 => Ok(format!("{name} was already there")),
            Err(e) => Err(ActionError::Failed(format!("creating {name}: {e}"))),
        }
    }
}

/// Starts a replica: the core, env and app commands (the real `deploy`) plus the chaos
/// effect, which creates its ConfigMap through `kube`.
pub async fn spawn(config: Config, probe: Arc<Probe>, kube: ::kube::Client) -> TestApp {
    support::init_tls();
    let specs = vec![
        (
            "commands/core.yaml".into(),
            include_str!("../../commands/core.yaml").into(),
        ),
        (
            "commands/env.yaml".into(),
            include_str!("../../commands/env.yaml").into(),
        ),
        (
            "commands/app.yaml".into(),
            include_str!("../../commands/app.yaml").into(),
        ),
        ("tests/chaos.yaml".into(), SPECS.into()),
    ];
    let effect = Effect {
        kube,
        probe: probe.clone(),
    };
    let running = Builder::new(config)
        .action(Arc::new(effect))
        .specs(specs)
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("a replica starts");
    let mut app = TestApp::from_running(running);
    app.probe = probe;
    app
}

/// What the test API server saw of each request's effect.
pub struct Effects {
    /// The request ids of the `effect-*` ConfigMaps that exist, one entry per object.
    objects: Vec<String>,
    /// The creates of the ConfigMaps (POSTs), by their field manager.
    posts: Vec<String>,
}

impl Effects {
    pub fn of(kube: &KubeTestServer) -> Effects {
        let objects = kube
            .list_objects("configmaps", Some(NAMESPACE))
            .into_iter()
            .filter(|o| o["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("effect-")))
            .map(|o| o["data"]["request"].as_str().unwrap_or("?").to_owned())
            .collect();
        let posts = kube
            .requests_with_query()
            .into_iter()
            .filter(|(method, path, _)| method == "POST" && path == CONFIGMAPS)
            .map(|(_, _, query)| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("fieldManager="))
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect();
        Effects { objects, posts }
    }

    /// (objects, creates) of request `id` in the test API server.
    pub fn counts(&self, id: &str) -> (usize, usize) {
        let objects = self.objects.iter().filter(|r| *r == id).count();
        let manager = field_manager(id);
        (objects, self.posts.iter().filter(|m| **m == manager).count())
    }

    /// "N objects from M creates": for the run's summary.
    pub fn summary(&self) -> String {
        format!(
            "{} effect objects from {} creates",
            self.objects.len(),
            self.posts.len()
        )
    }

    /// Objects and creates that belong to none of `ids`.
    pub fn strays(&self, ids: &[&str]) -> Vec<String> {
        let ours = |m: &str| ids.iter().any(|id| field_manager(id) == m);
        let objects = self.objects.iter().filter(|r| !ids.contains(&r.as_str()));
        let posts = self.posts.iter().filter(|m| !ours(m));
        objects
            .map(|r| format!("an effect object of {r}"))
            .chain(posts.map(|m| format!("a create by {m}")))
            .collect()
    }
}

/// How many times the store says request `view` was started: once, plus once per takeover
/// (a `resuming` event: its replica died while it ran and recovery queued it again).
pub fn tries(view: &Value) -> usize {
    let resumes = view["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["message"].as_str().is_some_and(|m| m.starts_with("resuming")))
        .count();
    1 + resumes
}

/// Exactly once, as the test API server saw it: an effect that succeeded left exactly one
/// object, and made exactly one create unless the store shows it was taken over after a
/// kill (`tries`): each takeover may repeat the create once (answered 409: the name is
/// taken). The store's own count of starts (`attempts`) and the action's runs agree with
/// that, so two replicas running one request without a kill (a broken claim) fails here
/// even though the second create cannot make a second object. Its outcome says it created
/// the object when it POSTed once. Any other request has neither object nor create, and
/// every request has ended.
pub fn check(view: &Value, effects: &Effects, runs: Option<usize>) -> Option<String> {
    let r = &view["request"];
    let (id, state) = (r["id"].as_str().unwrap_or(""), r["state"].as_str().unwrap_or(""));
    let outcome = r["outcome"].as_str().unwrap_or_default();
    let (objects, posts) = effects.counts(id);
    let tries = tries(view);
    let attempts = r["attempts"].as_i64().unwrap_or(-1);
    let fine = match (state, runs) {
        ("succeeded", Some(runs)) => {
            let said = outcome.starts_with("created ") || (posts > 1 && outcome.ends_with(" was already there"));
            let once = if tries == 1 {
                posts == 1 && runs == 1
            } else {
                posts >= 1 && posts <= runs && runs <= tries
            };
            objects == 1 && once && attempts == tries as i64 && said
        }
        (state, None) => objects == 0 && posts == 0 && crate::terminal(state),
        _ => false,
    };
    (!fine).then(|| {
        format!(
            "{id} ({}) ended {state} ({outcome:?}): {objects} objects, {posts} creates in the test API server, action run {runs:?} times, started {attempts} times, {} takeovers",
            r["text"],
            tries - 1
        )
    })
}
