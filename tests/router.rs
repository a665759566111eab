//! Table-driven router cases: matching, typed arguments, suggestions, RBAC, help, approval.

mod support;

use std::collections::{BTreeMap, HashMap};

use deckhand::{
    commands::{RouteError, Router, SpecContext, spec},
    domain::Surface,
    identity::{Directory, Principal},
};
use support::{ADMIN, OUTSIDER, test_config};

fn router() -> (Router, Directory) {
    let config = test_config("sqlite://unused.db");
    let actions: HashMap<String, Vec<String>> = [
        "help",
        "whoami",
        "requests",
        "request",
        "cancel",
        "approve",
        "deny",
        "test.count",
        "test.hold",
        "test.hold_safe",
    ]
    .into_iter()
    .map(|a| (a.to_owned(), Vec::new()))
    .collect();
    let ctx = SpecContext {
        actions: &actions,
        config: &config,
    };
    let specs = spec::compile_sources(support::test_specs(), &ctx).expect("test specs are valid");
    (Router::new(specs), Directory::from_config(&config))
}

fn who(dir: &Directory, user: &str) -> Principal {
    dir.user(user).expect("user in test config")
}

#[test]
fn matches_and_binds_typed_arguments() {
    let (r, d) = router();
    let alice = who(&d, "alice");
    // (text, command, expected args)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        (
            "deploy ghcr.io/acme/shop:1.2 to checkout",
            "deploy",
            &[
                ("image", "ghcr.io/acme/shop:1.2"),
                ("env", "checkout"),
                ("tier", "dev"),
                ("replicas", "1"),
            ],
        ),
        (
            "/deckhand deploy nginx:1.27 to web-1 tier=stage replicas=3",
            "deploy",
            &[
                ("image", "nginx:1.27"),
                ("env", "web-1"),
                ("tier", "stage"),
                ("replicas", "3"),
            ],
        ),
        ("  deploy   nginx:1   to  web  ", "deploy", &[("env", "web")]),
        ("help", "help", &[]),
        ("help deploy", "help", &[("command", "deploy")]),
        ("requests pending", "requests", &[("scope", "pending")]),
        ("requests", "requests", &[("scope", "mine")]),
        ("request R-ABC123", "request", &[("id", "r-abc123")]),
        (
            "deny r-abc123 not during the freeze",
            "deny",
            &[("reason", "not during the freeze")],
        ),
    ];
    for (text, command, args) in cases {
        let routed = r.route(&alice, text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(routed.spec.name, *command, "{text}");
        for (k, v) in *args {
            assert_eq!(routed.args.get(k), Some(*v), "{text}: arg {k}");
        }
    }
}

#[test]
fn argument_errors_name_the_argument_and_what_is_allowed() {
    let (r, d) = router();
    let alice = who(&d, "alice");
    // (text, argument, a phrase the message must contain)
    let cases = [
        ("deploy nginx to Checkout", "env", "lowercase letters, digits and '-'"),
        ("deploy nginx to -bad", "env", "not a valid name"),
        ("deploy NGINX!! to web", "image", "not an image reference"),
        ("deploy nginx to web tier=qa", "tier", "use one of dev, prod, stage"),
        (
            "deploy nginx to web replicas=11",
            "replicas",
            "out of range: use a whole number from 1 to 10",
        ),
        ("deploy nginx to web replicas=two", "replicas", "not a whole number"),
        ("request 12345", "id", "not a request id"),
    ];
    for (text, arg, phrase) in cases {
        match r.route(&alice, text) {
            Err(e @ RouteError::Arg { .. }) => {
                let RouteError::Arg { arg: got, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(got, arg, "{text}");
                let msg = e.to_string();
                assert!(msg.contains(phrase) && msg.contains("Usage: "), "{text}: {msg}");
            }
            other => panic!("{text}: expected an argument error, got {other:?}"),
        }
    }
    // The pattern does not match at all: usage and an example.
    let e = r.route(&alice, "deploy nginx").unwrap_err();
    assert!(matches!(e, RouteError::Usage { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("Usage: deploy <image> <env> [tier] [replicas]") && msg.contains("e.g. `deploy ghcr.io"),
        "{msg}"
    );
}

#[test]
fn unknown_commands_get_the_closest_matches() {
    let (r, d) = router();
    let alice = who(&d, "alice");
    let cases: &[(&str, &[&str])] = &[
        ("hepl", &["help"]),
        ("deplyo nginx to web", &["deploy"]),
        ("requets", &["requests", "request"]),
        ("frobnicate", &[]),
        // `sweep` is admin-only: never suggested to someone who cannot run it.
        ("swep", &[]),
    ];
    for (text, expected) in cases {
        match r.route(&alice, text) {
            Err(RouteError::Unknown { suggestions, .. }) => {
                let got: Vec<&str> = suggestions.iter().map(String::as_str).collect();
                for e in *expected {
                    assert!(got.contains(e), "{text}: {got:?} lacks {e}");
                }
                if expected.is_empty() {
                    assert!(got.is_empty(), "{text}: {got:?}");
                }
            }
            other => panic!("{text}: expected unknown command, got {other:?}"),
        }
    }
    let msg = r.route(&alice, "hepl").unwrap_err().to_string();
    assert_eq!(msg, "Unknown command `hepl`. Did you mean `help`?");
    assert!(matches!(r.route(&alice, "   "), Err(RouteError::Empty)));
}

#[test]
fn rbac_refuses_and_says_who_may() {
    let (r, d) = router();
    for (user, text) in [
        ("alice", "sweep"),
        ("alice", "hotfix web"),
        (OUTSIDER, "deploy nginx to web"),
    ] {
        match r.route(&who(&d, user), text) {
            Err(e @ RouteError::Forbidden { .. }) => {
                assert!(e.to_string().contains(&format!("You ({user}) may not run")), "{e}");
            }
            other => panic!("{user} {text}: expected forbidden, got {other:?}"),
        }
    }
    assert!(r.route(&who(&d, ADMIN), "sweep").is_ok());
}

#[test]
fn help_lists_only_what_the_caller_may_run() {
    let (r, d) = router();
    let alice = r.help_index(&who(&d, "alice"));
    let root = r.help_index(&who(&d, ADMIN));
    let eve = r.help_index(&who(&d, OUTSIDER));
    assert!(
        alice.contains("deploy <image> <env>") && !alice.contains("sweep") && !alice.contains("hotfix"),
        "{alice}"
    );
    assert!(root.contains("sweep") && root.contains("hotfix"), "{root}");
    assert!(!eve.contains("deploy") && eve.contains("whoami"), "{eve}");
    let detail = r.help_for(&who(&d, "alice"), "deploy").expect("help deploy");
    assert!(
        detail.contains("Usage: deploy")
            && detail.contains("Examples:")
            && detail.contains("replicas")
            && detail.contains("Needs approval by 1 of group:ops"),
        "{detail}"
    );
    assert!(
        r.help_for(&who(&d, "alice"), "sweep").is_err(),
        "no help for commands you cannot run"
    );
}

#[test]
fn approval_rule_applies_only_when_its_condition_holds() {
    let (r, d) = router();
    let alice = who(&d, "alice");
    assert!(
        r.route(&alice, "deploy nginx:1 to web")
            .unwrap()
            .approval(&alice, Surface::Api, &BTreeMap::new())
            .is_none()
    );
    let prod = r.route(&alice, "deploy nginx:1 to web tier=prod").unwrap();
    let policy = prod
        .approval(&alice, Surface::Api, &BTreeMap::new())
        .expect("prod needs approval");
    assert_eq!(
        (policy.count, policy.self_approve, policy.expires.to_string()),
        (1, false, "1h".into())
    );
    assert_eq!(
        r.route(&alice, "release web")
            .unwrap()
            .approval(&alice, Surface::Api, &BTreeMap::new())
            .map(|p| p.count),
        Some(2)
    );
}
