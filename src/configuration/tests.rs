//! The layered configuration's tests: embedded defaults, file overlays, the environment,
//! and the errors each bad key gets.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn embedded_defaults_load() {
    let c = Config::defaults().unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert!(c.tiers.contains_key(&Name::parse("prod").unwrap()));
    assert!(
        c.store
            .effective_url()
            .starts_with("sqlite://deckhand-data/deckhand.db")
    );
}

#[test]
fn env_overrides_single_keys() {
    let c = Config::build(
        None,
        env(&[
            ("DECKHAND_LISTEN", "0.0.0.0:9000"),
            ("DECKHAND_WORKER__CONCURRENCY", "9"),
            ("DATABASE_URL", "postgres://x@h/db"),
            ("DECKHAND_TOKEN", "ignored"),
            ("DECKHAND_TEST_PG_URL", "postgres://tests-own@h/db"),
            ("DECKHAND_KUBECTL_TESTS", "off"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(c.server.listen.port(), 9000);
    assert_eq!(c.worker.concurrency, 9);
    assert_eq!(c.store.effective_url(), "postgres://x@h/db");
}

#[test]
fn digits_from_the_environment_stay_text_for_string_keys() {
    let c = Config::build(
        None,
        env(&[
            ("DECKHAND_DISCORD__APPLICATION_ID", "1187654321098765432"),
            ("DECKHAND_KUBERNETES__CONTEXT", "2024"),
            ("DECKHAND_WORKER__CONCURRENCY", "12"),
            ("DECKHAND_APPS__REPLICAS", "3"),
        ]),
    )
    .unwrap();
    assert_eq!(c.discord.application_id, "1187654321098765432");
    assert_eq!(c.kubernetes.context, "2024");
    assert_eq!((c.worker.concurrency, c.apps.replicas), (12, 3));
    // A number key still refuses text, naming the variable.
    let e = Config::build(None, env(&[("DECKHAND_WORKER__CONCURRENCY", "many")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("worker.concurrency") && e.contains("DECKHAND_WORKER__CONCURRENCY"),
        "{e}"
    );
}

#[test]
fn unknown_and_bad_keys_are_named() {
    let e = Config::build(None, env(&[("DECKHAND_WORKER__CONCURENCY", "3")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("worker") && e.contains("concurency") && e.contains("DECKHAND_WORKER__CONCURENCY"),
        "{e}"
    );
    let e = Config::build(None, env(&[("DECKHAND_WORKER__LEASE", "soon")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("worker.lease") && e.contains("'soon' is not a duration"),
        "{e}"
    );
    let e = Config::build(None, env(&[("DECKHAND_WORKER__CONCURRENCY", "0")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("worker.concurrency"), "{e}");
}

#[test]
fn quantities_are_checked() {
    let e = Config::build(None, env(&[("DECKHAND_APPS__REPLICAS", "0")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("apps.replicas"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[tiers.dev]\ndefault_ttl = \"1h\"\nmax_ttl = \"2h\"\nquota = { pods = \"many\" }\n",
    )
    .unwrap();
    let e = Config::build(Some(&path), []).unwrap_err().to_string();
    assert!(
        e.contains("tiers.dev.quota.pods") && e.contains("'many' is not a Kubernetes quantity"),
        "{e}"
    );
    use super::validate::is_quantity;
    assert!(is_quantity("500m") && is_quantity("8Gi") && is_quantity("1.5") && !is_quantity("8GB"));
}

#[test]
fn shipped_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let c = Config::build(Some(&path), []).unwrap();
    assert_eq!(
        c.store.effective_url(),
        "postgres://deckhand@postgres.platform.svc:5432/deckhand"
    );
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.loadtest.max_workers, 20);
}

#[test]
fn file_overlay_replaces_users_and_checks_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[users.alice]\ngroups = [\"developers\"]\nidentities = [\"slack:U1\"]\n",
    )
    .unwrap();
    let c = Config::build(Some(&path), []).unwrap();
    assert_eq!(
        c.users.len(),
        1,
        "the built-in local user is gone once users are defined"
    );
    std::fs::write(&path, "[users.bob]\ngroups = [\"opps\"]\n").unwrap();
    let e = Config::build(Some(&path), []).unwrap_err().to_string();
    assert!(
        e.contains("users.bob.groups") && e.contains("unknown group 'opps'"),
        "{e}"
    );
    std::fs::write(&path, "[server]\nlisten = 5\n").unwrap();
    let e = Config::build(Some(&path), []).unwrap_err().to_string();
    assert!(e.contains("server.listen"), "{e}");
}
