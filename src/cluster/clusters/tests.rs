//! Configuration rules for `clusters.NAME`, the tier choices they make, and picking a cluster.

use super::*;
use crate::commands::args::parse_value;
use crate::commands::spec::ArgType;

/// The embedded defaults (tiers dev, stage, prod) with `toml` laid over them.
fn build(toml: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    Config::build(Some(&path), [])
}

const TWO: &str = r#"
[clusters.eu]
url = "https://eu.example.com:6443"
tiers = ["dev", "stage", "prod"]
default = true
[clusters.us]
url = "https://us.example.com:6443"
tiers = ["stage"]
"#;

#[test]
fn no_clusters_table_is_the_one_default_cluster() {
    let c = Config::defaults().unwrap();
    let clusters = Clusters::from_config(&c);
    assert!(!clusters.several());
    assert_eq!(clusters.names(), vec![DEFAULT]);
    assert_eq!(tier_choices(&c), vec!["dev", "prod", "stage"]);
    let (name, _) = clusters.for_tier("prod", None).unwrap();
    assert_eq!(name, DEFAULT);
}

#[test]
fn two_clusters_pick_by_tier_default_or_choice() {
    let c = build(TWO).unwrap();
    let clusters = Clusters::from_config(&c);
    assert!(clusters.several());
    assert_eq!(clusters.names(), vec!["eu", "us"]);
    assert_eq!(clusters.for_tier("stage", None).unwrap().0, "eu");
    assert_eq!(clusters.for_tier("stage", Some("us")).unwrap().0, "us");
    assert_eq!(clusters.for_tier("prod", None).unwrap().0, "eu");
    // Each cluster gets kubernetes.* with its own connection.
    assert_eq!(clusters.get("us").unwrap().config().url, "https://us.example.com:6443");
    assert_eq!(
        clusters.get("us").unwrap().config().rollout_deadline,
        c.kubernetes.rollout_deadline
    );
    let e = clusters.get("mars").err().unwrap().to_string();
    assert_eq!(e, "there is no cluster 'mars'; the clusters are eu, us");
    assert_eq!(
        tier_choices(&c),
        vec!["dev", "prod", "stage", "dev@eu", "prod@eu", "stage@eu", "stage@us"]
    );
}

#[test]
fn tier_at_cluster_values_say_which_part_is_wrong() {
    let c = build(TWO).unwrap();
    let kind = ArgType::Tier(tier_choices(&c));
    assert_eq!(parse_value("tier", &kind, "stage@us").unwrap(), "stage@us");
    assert_eq!(
        parse_value("tier", &kind, "stage@mars").unwrap_err(),
        "there is no cluster 'mars'; the clusters are eu, us"
    );
    assert_eq!(
        parse_value("tier", &kind, "prod@us").unwrap_err(),
        "cluster us does not serve tier prod; prod is served by eu"
    );
    assert_eq!(
        parse_value("tier", &kind, "qa@eu").unwrap_err(),
        "'qa' is not a tier; use one of dev, prod, stage"
    );
    let one = ArgType::Tier(tier_choices(&Config::defaults().unwrap()));
    assert!(
        parse_value("tier", &one, "dev@eu")
            .unwrap_err()
            .contains("there are no clusters to choose from")
    );
}

#[test]
fn a_shared_tier_needs_exactly_one_default() {
    let e = build(&TWO.replace("default = true\n", "")).unwrap_err().to_string();
    assert!(
        e.contains("config key `clusters`")
            && e.contains("tier 'stage' is served by clusters eu, us; mark exactly one of them `default = true`"),
        "{e}"
    );
    let both = TWO.replace("tiers = [\"stage\"]\n", "tiers = [\"stage\"]\ndefault = true\n");
    let e = build(&both).unwrap_err().to_string();
    assert!(e.contains("tier 'stage' is served by clusters eu, us"), "{e}");
}

#[test]
fn every_tier_is_served_and_only_known_tiers() {
    let e = build("[clusters.eu]\nurl = \"https://eu.example.com\"\ntiers = [\"dev\", \"stage\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no cluster serves tier 'prod'"), "{e}");
    let e = build("[clusters.eu]\ntiers = [\"dev\", \"stage\", \"prod\", \"qa\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clusters.eu.tiers") && e.contains("unknown tier 'qa' (defined tiers: dev, prod, stage)"),
        "{e}"
    );
}

#[test]
fn connection_keys_are_checked_under_the_clusters_name() {
    let e = build("[clusters.eu]\nurl = \"ftp://eu\"\ntiers = [\"dev\", \"stage\", \"prod\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clusters.eu.url") && e.contains("http:// or https://"),
        "{e}"
    );
    let e = build(
        "[clusters.eu]\nurl = \"https://eu\"\nca_file = \"/nonexistent/ca.pem\"\ntiers = [\"dev\", \"stage\", \"prod\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("clusters.eu.ca_file"), "{e}");
    let e = build("[clusters.eu]\nurl = \"https://eu\"\ntier = [\"dev\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("clusters.eu") && e.contains("unknown field `tier`"), "{e}");
    let e = build("[clusters.EU]\nurl = \"https://eu\"\n").unwrap_err().to_string();
    assert!(e.contains("clusters"), "{e}");
}
