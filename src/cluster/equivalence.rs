//! Proof that building deckhand's objects from k8s-openapi types changed nothing on the
//! wire: `before` holds the `json!` builders deckhand used until then, verbatim, and each
//! test checks that the typed object serializes to exactly the same JSON (every field,
//! `apiVersion` and `kind` included), for one object of each kind and each branch.
//! Misspellings themselves cannot happen any more: a wrong field name does not compile.

mod before;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{egress, load_job::LoadJob, objects};
use crate::{
    configuration::Config,
    domain::{Name, RequestId},
};

fn typed(obj: &impl Serialize) -> Value {
    serde_json::to_value(obj).expect("k8s-openapi objects serialize")
}

fn config() -> Config {
    Config::defaults().expect("the default configuration")
}

fn env_plan(groups: &[&str]) -> objects::EnvPlan {
    objects::EnvPlan {
        name: Name::parse("checkout").unwrap(),
        tier: "dev".into(),
        owner: "alice".into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        request: RequestId::parse("r-abc123").unwrap(),
        expires_at: "2026-12-03T18:00:00Z".parse().unwrap(),
    }
}

fn app_plan(port: Option<i32>) -> objects::AppPlan {
    objects::AppPlan {
        app: Name::parse("shop").unwrap(),
        env: Name::parse("checkout").unwrap(),
        image: "ghcr.io/acme/shop:1.4.2".into(),
        replicas: 3,
        port,
        request: RequestId::parse("r-abc123").unwrap(),
        owner: "alice".into(),
    }
}

/// Asserts equality and that the comparison saw the object's kind (so an empty value on
/// both sides cannot pass).
fn same(typed_json: Value, before: Value, kind: &str) {
    assert_eq!(typed_json["kind"], kind, "{typed_json:#}");
    assert_eq!(
        typed_json, before,
        "{kind} differs from the JSON deckhand applied before:\ntyped: {typed_json:#}\nbefore: {before:#}"
    );
}

#[test]
fn environment_objects_are_unchanged() {
    let cfg = config();
    let dev = &cfg.tiers[&Name::parse("dev").unwrap()];
    assert!(!dev.allow_from_namespaces.is_empty() && !dev.quota.is_empty());
    let mut closed = dev.clone();
    closed.allow_from_namespaces.clear();
    for groups in [&[][..], &["payments", "sre"][..]] {
        let plan = env_plan(groups);
        same(typed(&objects::namespace(&plan)), before::namespace(&plan), "Namespace");
        same(
            typed(&objects::resource_quota(&plan, dev)),
            before::resource_quota(&plan, dev),
            "ResourceQuota",
        );
        same(
            typed(&objects::limit_range(&plan, dev)),
            before::limit_range(&plan, dev),
            "LimitRange",
        );
        for tier in [dev, &closed] {
            same(
                typed(&objects::network_policy(&plan, tier, &cfg.kubernetes)),
                before::network_policy(&plan, tier, &cfg.kubernetes),
                "NetworkPolicy",
            );
        }
        same(
            typed(&objects::role_binding(&plan, &cfg.kubernetes, "edit")),
            before::role_binding(&plan, &cfg.kubernetes, "edit"),
            "RoleBinding",
        );
    }
}

#[test]
fn app_objects_are_unchanged() {
    let cfg = config();
    for port in [None, Some(8080)] {
        let plan = app_plan(port);
        same(
            typed(&objects::deployment(&plan, &cfg.apps)),
            before::deployment(&plan, &cfg.apps),
            "Deployment",
        );
        assert_eq!(objects::service(&plan).is_some(), before::service(&plan).is_some());
        if let (Some(now), Some(then)) = (objects::service(&plan), before::service(&plan)) {
            same(typed(&now), then, "Service");
        }
    }
}

#[test]
fn load_test_objects_are_unchanged() {
    same(
        typed(&egress::loadgen_policy("checkout")),
        before::loadgen_policy("checkout"),
        "NetworkPolicy",
    );
    same(
        typed(&egress::outside_policy(
            "checkout",
            "loadtest-abc123",
            "uid-1",
            "r-abc123",
        )),
        before::outside_policy("checkout", "loadtest-abc123", "uid-1", "r-abc123"),
        "NetworkPolicy",
    );
    let cfg = config().loadtest;
    let job = LoadJob {
        namespace: "checkout".into(),
        name: "loadtest-abc123".into(),
        request: RequestId::parse("r-abc123").unwrap(),
        url: "http://shop.checkout.svc:8080/".into(),
        workers: 3,
        rate: 100,
        duration: Duration::from_secs(90),
        timeout: Duration::from_secs(10),
        approved_outside: false,
    };
    same(typed(&job.manifest(&cfg).unwrap()), before::load_job(&job, &cfg), "Job");
}
