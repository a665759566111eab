//! The names an environment may not take.
//!
//! An environment is a namespace, and other namespaces' names mean something: the tiers'
//! NetworkPolicies let in traffic from `allow_from_namespaces`, Kubernetes keeps `kube-*`
//! and `default`, deckhand runs in its own. A developer who could create `monitoring` would
//! reach every environment's pods. So those names are refused at submission, before anything
//! is stored, and again when the request runs (the configuration may have changed while it
//! waited for approval). Namespaces deckhand did not create are refused too.

use super::ActionError;
use crate::{app::App, configuration::Config};

/// Why `name` is reserved, if it is.
pub(super) fn reserved(name: &str, config: &Config) -> Option<String> {
    let why = if name.starts_with("kube-") || name == "default" {
        "Kubernetes keeps it for itself".to_owned()
    } else if name == config.kubernetes.namespace {
        "deckhand runs there".to_owned()
    } else if let Some((tier, _)) = config
        .tiers
        .iter()
        .find(|(_, t)| t.allow_from_namespaces.iter().any(|n| n == name))
    {
        format!("the {tier} tier's environments trust traffic from it (tiers.{tier}.allow_from_namespaces)")
    } else {
        return None;
    };
    Some(format!(
        "'{name}' is a reserved namespace name ({why}); pick another name for your environment"
    ))
}

/// Refuses a reserved name, or a namespace that exists and is not one of deckhand's.
pub(super) async fn check_new(app: &App, name: &str) -> Result<(), ActionError> {
    if let Some(why) = reserved(name, &app.config) {
        return Err(ActionError::Failed(why));
    }
    // With several clusters a silent one is not a reason to refuse here; `env create`
    // checks again, strictly, when it runs.
    let existing = if app.clusters.several() {
        app.clusters.find(name).await?.0.map(|(_, e)| e)
    } else {
        app.cluster.environment(name).await?
    };
    match existing {
        Some(e) if !e.managed => Err(ActionError::Failed(format!(
            "namespace {name} already exists and was not created by deckhand; pick another name"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::reserved;
    use crate::configuration::Config;

    #[test]
    fn reserved_names() {
        let c = Config::defaults().unwrap();
        for name in [
            "kube-system",
            "kube-public",
            "default",
            "deckhand",
            "monitoring",
            "ingress-nginx",
        ] {
            let why = reserved(name, &c).unwrap_or_else(|| panic!("{name} is reserved"));
            assert!(why.contains("pick another name"), "{why}");
        }
        assert!(reserved("monitoring", &c).unwrap().contains("allow_from_namespaces"));
        for name in ["checkout-preview", "kube", "defaults", "my-monitoring"] {
            assert_eq!(reserved(name, &c), None, "{name}");
        }
    }
}
