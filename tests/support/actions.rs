//! Test-only actions that let tests count executions and hold a request in `running`.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use deckhand::{
    actions::{Action, ActionContext, ActionError},
    startup::Builder,
};
use tokio::sync::Notify;

pub const TEST_SPECS: &str = r#"
- name: deploy
  help: Test deploy that counts its executions
  pattern: '^deploy (?P<image>\S+) to (?P<env>\S+)(?: tier=(?P<tier>\S+))?(?: replicas=(?P<replicas>\S+))?$'
  examples: ["deploy ghcr.io/acme/shop:1.2 to checkout tier=prod"]
  args:
    image: { type: image }
    env: { type: name }
    tier: { type: tier, default: dev }
    replicas: { type: int, min: 1, max: 10, default: "1" }
  action: test.count
  allow: [group:developers]
  approval: { when: "tier == 'prod'", approvers: [group:ops], count: 1, expires: 1h }

- name: release
  help: Needs two distinct ops approvals
  pattern: '^release (?P<env>\S+)$'
  args:
    env: { type: name }
  action: test.count
  allow: [group:developers]
  approval: { approvers: [group:ops], count: 2, expires: 1h }

- name: hotfix
  help: Needs one approval; the requester may approve it
  pattern: '^hotfix (?P<env>\S+)$'
  args:
    env: { type: name }
  action: test.count
  allow: [group:ops]
  approval: { approvers: [group:ops], count: 1, self_approve: true }

- name: flash
  help: Approval that expires quickly
  pattern: '^flash (?P<env>\S+)$'
  args:
    env: { type: name }
  action: test.count
  allow: [group:developers]
  approval: { approvers: [group:ops], expires: 1s }

- name: hold
  help: Runs until the test releases it; not safe to re-run
  pattern: '^hold (?P<env>\S+)$'
  args:
    env: { type: name }
  action: test.hold
  allow: [group:developers]

- name: hold-safe
  help: Runs until released; safe to re-run
  pattern: '^hold-safe (?P<env>\S+)$'
  args:
    env: { type: name }
  action: test.hold_safe
  allow: [group:developers]

- name: sweep
  help: Admin-only command
  pattern: '^sweep$'
  action: test.count
  allow: [group:admins]
"#;

/// What the test actions did, shared with the test.
#[derive(Default)]
pub struct Probe {
    pub executions: AtomicUsize,
    pub by_env: Mutex<HashMap<String, usize>>,
    pub release: Notify,
    pub started: Notify,
}

impl Probe {
    pub fn count(&self, env: &str) -> usize {
        self.by_env.lock().expect("lock").get(env).copied().unwrap_or(0)
    }
}

struct Count(Arc<Probe>);

#[async_trait]
impl Action for Count {
    fn name(&self) -> &'static str {
        "test.count"
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        self.0.executions.fetch_add(1, Ordering::SeqCst);
        let env = ctx.request.args.get("env").unwrap_or("-").to_owned();
        *self.0.by_env.lock().expect("lock").entry(env.clone()).or_default() += 1;
        ctx.progress(format!("counted {env}")).await?;
        Ok(format!("done with {env}"))
    }
}

struct Hold {
    probe: Arc<Probe>,
    safe: bool,
}

#[async_trait]
impl Action for Hold {
    fn name(&self) -> &'static str {
        if self.safe { "test.hold_safe" } else { "test.hold" }
    }
    fn rerunnable(&self) -> bool {
        self.safe
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let env = ctx.request.args.get("env").unwrap_or("-").to_owned();
        *self.probe.by_env.lock().expect("lock").entry(env.clone()).or_default() += 1;
        self.probe.started.notify_one();
        ctx.progress("holding").await?;
        tokio::select! {
            _ = self.probe.release.notified() => Ok(format!("released {env}")),
            _ = ctx.cancel.cancelled() => Err(ActionError::Cancelled),
        }
    }
}

pub fn register(builder: Builder, probe: &Arc<Probe>) -> Builder {
    builder
        .action(Arc::new(Count(probe.clone())))
        .action(Arc::new(Hold {
            probe: probe.clone(),
            safe: false,
        }))
        .action(Arc::new(Hold {
            probe: probe.clone(),
            safe: true,
        }))
}
