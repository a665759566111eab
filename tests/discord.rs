//! The Discord surface against a local fake of Discord's API: signed interactions, deferred
//! responses, approval buttons, follow-ups, token expiry, rate limits and registration.

#[path = "support/discord/mod.rs"]
mod discord_fake;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::{collections::BTreeMap, collections::BTreeSet, sync::Arc, time::Duration};

use deckhand::{
    configuration::Config,
    discord::{self, InteractionVerifier, VerifyError, command_text},
    identity::Principal,
    startup::Builder,
};
use discord_fake::{
    APPLICATION_ID, BOT_TOKEN, CHANNEL_ID, FakeDiscordServer, InteractionSigner, command_payload, component_payload,
    new_interaction, unix_now,
};
use serde_json::{Value, json};
use serenity::model::application::CommandDataOption;
use support::{Backend, TestApp, TestDb, backends, discord_id, test_config};

struct Rig {
    app: TestApp,
    discord: FakeDiscordServer,
    signer: InteractionSigner,
    kube: Option<kube_fake::KubeTestServer>,
    _db: TestDb,
}

fn with_discord(config: &mut Config, discord: &FakeDiscordServer, signer: &InteractionSigner) {
    config.discord.public_key = signer.public_key_hex();
    config.discord.application_id = APPLICATION_ID.into();
    config.discord.bot_token = BOT_TOKEN.into();
    config.discord.api_base = discord.api_base();
}

/// The server with the test actions and specs (tests/support/actions.rs).
async fn start(backend: Backend, edit: impl FnOnce(&mut Config)) -> Rig {
    let discord = FakeDiscordServer::start().await;
    let signer = InteractionSigner::generate();
    let db = TestDb::new(backend).await;
    let mut config = test_config(&db.url);
    with_discord(&mut config, &discord, &signer);
    edit(&mut config);
    let app = support::spawn_app_with(config, Arc::new(support::actions::Probe::default())).await;
    Rig {
        app,
        discord,
        signer,
        kube: None,
        _db: db,
    }
}

/// The server with the built-in specs and actions against the Kubernetes test API server.
async fn start_with_kube(backend: Backend) -> Rig {
    let kube = kube_fake::KubeTestServer::start().await;
    kube.set_step(Duration::from_millis(15));
    let discord = FakeDiscordServer::start().await;
    let signer = InteractionSigner::generate();
    let db = TestDb::new(backend).await;
    let mut config = test_config(&db.url);
    config.kubernetes.url = kube.url();
    config.kubernetes.rollout_deadline = "20s".parse().expect("duration");
    config.kubernetes.stall_after = "1s".parse().expect("duration");
    with_discord(&mut config, &discord, &signer);
    support::init_tls();
    let running = Builder::new(config)
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("app starts");
    let app = TestApp {
        addr: running.addr,
        url: format!("http://{}", running.addr),
        running: Some(running),
        probe: Arc::new(support::actions::Probe::default()),
        http: reqwest::Client::new(),
    };
    Rig {
        app,
        discord,
        signer,
        kube: Some(kube),
        _db: db,
    }
}

impl Rig {
    /// POSTs `body` to the interactions endpoint with the given timestamp and signature.
    async fn post_raw(&self, body: &str, timestamp: &str, signature: Option<&str>) -> (u16, Value) {
        let mut req = self
            .app
            .http
            .post(format!("{}/discord/interactions", self.app.url))
            .header("content-type", "application/json")
            .header("x-signature-timestamp", timestamp)
            .body(body.to_owned());
        if let Some(s) = signature {
            req = req.header("x-signature-ed25519", s);
        }
        let resp = req.send().await.expect("POST interaction");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Sends `payload` signed now, as Discord would.
    async fn send(&self, payload: &Value) -> (u16, Value) {
        if let Some(t) = payload["token"].as_str() {
            let user = payload["member"]["user"]["id"].as_str().unwrap_or_default();
            self.discord.fake.issue_token_to(t, user);
        }
        let body = payload.to_string();
        let ts = unix_now().to_string();
        let sig = self.signer.sign(&ts, body.as_bytes());
        let (status, answer) = self.post_raw(&body, &ts, Some(&sig)).await;
        // Discord refuses an answer over its limits; so does every test.
        let refused = discord_fake::limits::check_response(&answer);
        assert!(refused.is_empty(), "Discord would refuse {answer:#}: {refused:?}");
        (status, answer)
    }

    /// Submits the modal `custom_id` with `inputs` as `user`.
    async fn submit_modal(&self, user: &str, custom_id: &str, inputs: &[(&str, &str)]) -> (u16, Value) {
        let (id, token) = new_interaction();
        self.send(&discord_fake::modal_submit_payload(
            &id,
            &token,
            &discord_id(user),
            custom_id,
            inputs,
        ))
        .await
    }

    /// `/deckhand <words> <options>` by `user`; returns (interaction token, status, answer).
    async fn command(&self, user: &str, words: &[&str], options: &[(&str, Value)]) -> (String, u16, Value) {
        let (id, token) = new_interaction();
        let p = command_payload(&id, &token, &discord_id(user), &[], words, options);
        let (s, v) = self.send(&p).await;
        self.discord.fake.responded(&token, &v);
        (token, s, v)
    }

    async fn click(&self, user: &str, custom_id: &str) -> (u16, Value) {
        let (id, token) = new_interaction();
        self.send(&component_payload(&id, &token, &discord_id(user), &[], custom_id))
            .await
    }

    async fn all_requests(&self) -> Vec<Value> {
        let (_, v) = self.app.get_as(support::ADMIN, "/api/v1/requests?scope=all").await;
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    /// The only request stored so far.
    async fn only_request(&self) -> String {
        let all = self.all_requests().await;
        assert_eq!(all.len(), 1, "{all:#?}");
        all[0]["id"].as_str().expect("id").to_owned()
    }
}

/// The custom_ids of the buttons on the message with the Approve button, once it is there.
async fn approval_buttons(rig: &Rig) -> (String, String, String) {
    rig.discord
        .fake
        .wait_until("approval buttons", |f| {
            f.posted().iter().any(|m| m.components.to_string().contains("Approve"))
        })
        .await;
    let m = rig
        .discord
        .fake
        .posted()
        .into_iter()
        .find(|m| m.components.to_string().contains("Approve"))
        .expect("buttons message");
    let buttons = m.components[0]["components"].as_array().expect("buttons").clone();
    let id_of = |label: &str| {
        buttons
            .iter()
            .find(|b| b["label"] == label)
            .and_then(|b| b["custom_id"].as_str())
            .expect("button")
            .to_owned()
    };
    (m.id.clone(), id_of("Approve"), id_of("Deny"))
}

fn is_ephemeral(v: &Value) -> bool {
    v["type"] == 4 && v["data"]["flags"] == 64
}

#[test]
fn the_shared_signature_vector_verifies_and_a_changed_byte_does_not() {
    let vector: Value =
        serde_json::from_str(include_str!("support/discord/fixtures/signature_vector.json")).expect("vector");
    let v = InteractionVerifier::new(vector["public_key_hex"].as_str().expect("key")).expect("valid key");
    let sig = vector["header_x_signature_ed25519"].as_str().expect("sig");
    let ts = vector["header_x_signature_timestamp"].as_str().expect("ts");
    let body = vector["body"].as_str().expect("body").as_bytes().to_vec();
    assert_eq!(v.verify_signature(sig, ts, &body), Ok(()));
    for i in [0, body.len() / 2, body.len() - 1] {
        let mut changed = body.clone();
        changed[i] ^= 1;
        assert_eq!(
            v.verify_signature(sig, ts, &changed),
            Err(VerifyError::BadSignature),
            "byte {i}"
        );
    }
    assert!(
        v.verify_signature(sig, "1732450001", &body).is_err(),
        "timestamp is signed"
    );
    let mut bad_sig = sig.to_owned();
    bad_sig.replace_range(0..2, if sig.starts_with("00") { "01" } else { "00" });
    assert!(v.verify_signature(&bad_sig, ts, &body).is_err());
    // The fixture's seed signs the same way our test signer does.
    let seed: Vec<u8> = (0u8..32).collect();
    let signer = InteractionSigner::from_seed(seed.try_into().expect("32 bytes"));
    assert_eq!(signer.public_key_hex(), vector["public_key_hex"].as_str().expect("key"));
    assert_eq!(signer.sign(ts, &body), sig);
    // Old but valid: refused as stale by the full check.
    let now: u64 = ts.parse::<u64>().expect("ts") + 3600;
    assert_eq!(
        v.verify(Some(sig), Some(ts), &body, now, Duration::from_secs(300)),
        Err(VerifyError::Stale(3600))
    );
    assert!(InteractionVerifier::new("not-hex").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_pong_and_forged_stale_or_malformed_interactions_change_nothing() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |_| {}).await;
        let ping = include_str!("support/discord/fixtures/ping.json").trim();
        let ts = unix_now().to_string();
        let (s, v) = rig
            .post_raw(ping, &ts, Some(&rig.signer.sign(&ts, ping.as_bytes())))
            .await;
        assert_eq!((s, v), (200, json!({ "type": 1 })));

        // A command that would create a request, if it got through.
        let (id, token) = new_interaction();
        let cmd = command_payload(
            &id,
            &token,
            &discord_id("alice"),
            &[],
            &["deploy"],
            &[("image", json!("nginx:1.27")), ("env", json!("web"))],
        )
        .to_string();
        let forged = InteractionSigner::generate().sign(&ts, cmd.as_bytes());
        assert_eq!(rig.post_raw(&cmd, &ts, Some(&forged)).await.0, 401, "other key");
        assert_eq!(rig.post_raw(&cmd, &ts, None).await.0, 401, "no signature");
        assert_eq!(rig.post_raw(&cmd, &ts, Some("zz")).await.0, 401, "not hex");
        let tampered = cmd.replace("nginx:1.27", "nginx:1.28");
        let sig = rig.signer.sign(&ts, cmd.as_bytes());
        assert_eq!(rig.post_raw(&tampered, &ts, Some(&sig)).await.0, 401, "changed body");
        let stale = (unix_now() - 600).to_string();
        let stale_sig = rig.signer.sign(&stale, cmd.as_bytes());
        assert_eq!(rig.post_raw(&cmd, &stale, Some(&stale_sig)).await.0, 401, "stale");
        let future = (unix_now() + 600).to_string();
        let future_sig = rig.signer.sign(&future, cmd.as_bytes());
        assert_eq!(rig.post_raw(&cmd, &future, Some(&future_sig)).await.0, 401, "future");
        // Signed but malformed: 400.
        for body in ["not json", r#"{"type": 2}"#, r#"{"type": 2, "id": "x", "data": 5}"#] {
            let sig = rig.signer.sign(&ts, body.as_bytes());
            assert_eq!(rig.post_raw(body, &ts, Some(&sig)).await.0, 400, "{body}");
        }
        // Each was refused before its answer: signature and parse checks come first and
        // spawn nothing, so the answers above are the condition; nothing was stored or posted.
        assert!(rig.all_requests().await.is_empty(), "nothing stored");
        assert!(rig.discord.fake.calls().is_empty(), "nothing posted");
        assert_eq!(rig.app.probe.executions.load(std::sync::atomic::Ordering::SeqCst), 0);
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_people_and_bad_commands_get_an_ephemeral_answer_and_nothing_is_stored() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |_| {}).await;
        let (id, token) = new_interaction();
        let p = command_payload(&id, &token, "999999999999999999", &[], &["whoami"], &[]);
        let (s, v) = rig.send(&p).await;
        assert_eq!(s, 200);
        assert!(is_ephemeral(&v), "{v}");
        assert!(
            v["data"]["content"]
                .as_str()
                .expect("content")
                .contains("discord:999999999999999999"),
            "{v}"
        );
        // eve may not deploy: the router's refusal, only to her.
        let (_, s, v) = rig
            .command(
                "eve",
                &["deploy"],
                &[("image", json!("nginx:1.27")), ("env", json!("web"))],
            )
            .await;
        assert_eq!(s, 200);
        assert!(
            is_ephemeral(&v) && v["data"]["content"].as_str().expect("c").contains("may not run"),
            "{v}"
        );
        // An option smuggling another argument in.
        let (_, _, v) = rig
            .command(
                "alice",
                &["deploy"],
                &[("image", json!("nginx:1.27")), ("env", json!("web tier=prod"))],
            )
            .await;
        assert!(
            is_ephemeral(&v) && v["data"]["content"].as_str().expect("c").contains("spaces"),
            "{v}"
        );
        assert!(rig.all_requests().await.is_empty());
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_ids_map_to_groups() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |c| {
            for (name, group) in c.groups.iter_mut() {
                if name.to_string() == "ops" {
                    group.identities.push("discord-role:1000000000000000777".into());
                }
            }
        })
        .await;
        // eve is in no group by configuration; the Discord role makes her ops for this click.
        let (_, s, _) = rig
            .command(
                "alice",
                &["deploy"],
                &[
                    ("image", json!("nginx:1.27")),
                    ("env", json!("roles")),
                    ("tier", json!("prod")),
                ],
            )
            .await;
        assert_eq!(s, 200);
        let (_, approve, _) = approval_buttons(&rig).await;
        let (_, v) = rig.click("eve", &approve).await;
        assert!(is_ephemeral(&v), "without the role: {v}");
        let (id, token) = new_interaction();
        let p = component_payload(&id, &token, &discord_id("eve"), &["1000000000000000777"], &approve);
        let (s, v) = rig.send(&p).await;
        assert_eq!((s, v["type"].as_u64()), (200, Some(7)), "{v}");
        assert!(
            v["data"]["content"]
                .as_str()
                .expect("c")
                .contains(&decided("eve", "approved")),
            "{v}"
        );
        let rid = rig.only_request().await;
        rig.app.wait_for_state(&rid, &["succeeded"]).await;
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_deliveries_run_once() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |_| {}).await;
        let (id, token) = new_interaction();
        let p = command_payload(
            &id,
            &token,
            &discord_id("alice"),
            &[],
            &["deploy"],
            &[
                ("image", json!("nginx:1.27")),
                ("env", json!("once")),
                ("replicas", json!(2)),
            ],
        );
        let (s1, v1) = rig.send(&p).await;
        let (s2, v2) = rig.send(&p).await;
        assert_eq!((s1, &v1), (200, &json!({ "type": 5 })));
        assert_eq!((s2, &v2), (200, &json!({ "type": 5 })));
        let rid = rig.only_request().await;
        let done = rig.app.wait_for_state(&rid, &["succeeded"]).await;
        assert_eq!(done["request"]["text"], "deploy nginx:1.27 to once replicas=2");
        rig.discord
            .fake
            .wait_until("final status", |f| {
                f.original(&token).is_some_and(|m| m.content.contains("succeeded"))
            })
            .await;
        assert_eq!(rig.app.probe.count("once"), 1);
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_buttons_refuse_the_wrong_people_and_show_who_decided() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |_| {}).await;
        let (token, s, v) = rig
            .command(
                "alice",
                &["deploy"],
                &[
                    ("image", json!("ghcr.io/acme/shop:1.2")),
                    ("env", json!("shop")),
                    ("tier", json!("prod")),
                ],
            )
            .await;
        assert_eq!((s, v), (200, json!({ "type": 5 })));
        let rid = rig.only_request().await;
        let (msg, approve, deny) = approval_buttons(&rig).await;
        assert!(approve.len() <= 100 && approve.contains(&rid), "{approve}");
        assert_ne!(approve, deny);
        // The waiting status is shown once: the approval prompt does not re-send it unchanged.
        let status_edits: Vec<String> = rig
            .discord
            .fake
            .calls()
            .iter()
            .filter(|c| c.method == "PATCH" && c.path.ends_with("/messages/@original"))
            .map(|c| c.body["content"].to_string())
            .collect();
        assert_eq!(status_edits.len(), 1, "{status_edits:#?}");

        // The requester, an outsider, a forged id and a developer: ephemeral, nothing changes.
        for (who, custom_id) in [
            ("alice", approve.clone()),
            ("eve", approve.clone()),
            ("bob", deny.clone()),
            ("olga", approve.replace(&rid, "r-zzzzzzzzzz")),
            // The last character changed (to one it is not: a fixed 'x' left one value in 64 intact).
            ("olga", {
                let last = if approve.ends_with('x') { 'y' } else { 'x' };
                format!("{}{last}", &approve[..approve.len() - 1])
            }),
        ] {
            let (s, v) = rig.click(who, &custom_id).await;
            assert_eq!(s, 200);
            assert!(is_ephemeral(&v), "{who}: {v}");
        }
        let (_, v) = rig.app.get_as(support::ADMIN, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(v["request"]["state"], "pending_approval");
        assert_eq!(rig.app.probe.count("shop"), 0);

        let (s, v) = rig.click("olga", &approve).await;
        assert_eq!((s, v["type"].as_u64()), (200, Some(7)), "{v}");
        assert_eq!(v["data"]["components"], json!([]), "buttons replaced");
        assert!(
            v["data"]["content"]
                .as_str()
                .expect("c")
                .contains(&decided("olga", "approved")),
            "{v}"
        );
        rig.app.wait_for_state(&rid, &["succeeded"]).await;
        rig.discord
            .fake
            .wait_until("buttons message shows the decision", |f| {
                f.message(&msg)
                    .is_some_and(|m| m.content.contains(&decided("olga", "approved")) && m.components == json!([]))
            })
            .await;
        rig.discord
            .fake
            .wait_until("status shows success", |f| {
                f.original(&token).is_some_and(|m| m.content.contains("succeeded"))
            })
            .await;
        // A second click after the decision changes nothing.
        let (_, v) = rig.click("omar", &approve).await;
        assert!(is_ephemeral(&v), "{v}");
        assert_eq!(rig.app.probe.count("shop"), 1);

        // Deny on another request.
        let (_, _, _) = rig.command("alice", &["release"], &[("env", json!("shop"))]).await;
        rig.discord
            .fake
            .wait_until("second buttons", |f| {
                f.posted()
                    .iter()
                    .filter(|m| m.components.to_string().contains("Deny"))
                    .count()
                    == 1
                    && f.posted().iter().any(|m| m.content.contains("release shop"))
            })
            .await;
        let m = rig
            .discord
            .fake
            .posted()
            .into_iter()
            .find(|m| m.content.contains("release shop") && m.components.to_string().contains("Deny"))
            .expect("release buttons");
        let deny = m.components[0]["components"][1]["custom_id"]
            .as_str()
            .expect("deny")
            .to_owned();
        // Deny asks why: a modal carrying the signed Deny id and a required reason.
        let (_, v) = rig.click("omar", &deny).await;
        assert_eq!(v["type"], 9, "{v}");
        assert_eq!(v["data"]["custom_id"], deny.as_str());
        let input = &v["data"]["components"][0]["components"][0];
        assert_eq!(
            (input["custom_id"].as_str(), input["required"].as_bool()),
            (Some("reason"), Some(true))
        );
        let release = rig
            .all_requests()
            .await
            .into_iter()
            .find(|r| r["text"].as_str().is_some_and(|t| t.contains("release shop")))
            .expect("release request");
        let rid = release["id"].as_str().expect("id").to_owned();
        // A forged submission (another key's signature) is refused and changes nothing.
        let other = deckhand::signing::Signer::new(b"another key");
        let parsed = deckhand::domain::RequestId::parse(&rid).expect("id");
        let forged = deckhand::discord::buttons::custom_id(&other, deckhand::discord::buttons::Decision::Deny, &parsed);
        let (_, v) = rig.submit_modal("omar", &forged, &[("reason", "forged")]).await;
        assert!(
            is_ephemeral(&v) && v.to_string().contains("not made by this deckhand"),
            "{v}"
        );
        let (_, state) = rig.app.get_as(support::ADMIN, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(state["request"]["state"], "pending_approval");
        assert_eq!(state["approvals"], json!([]));
        // The real form: denied with the reason, shown on the approval message and stored.
        let (_, v) = rig.submit_modal("omar", &deny, &[("reason", "wrong image tag")]).await;
        assert_eq!(v["type"], 7, "{v}");
        let content = v["data"]["content"].as_str().expect("c");
        assert!(
            content.contains(&format!("{}: wrong image tag", decided("omar", "denied"))),
            "{v}"
        );
        assert_eq!(v["data"]["components"], json!([]));
        let done = rig.app.wait_for_state(&rid, &["denied"]).await;
        assert_eq!(done["approvals"][0]["reason"], "wrong image tag", "{done:#}");
        rig.app.shutdown().await;
    }
}

/// Removes the fields at these JSON pointers (`/member/deaf`) from a payload.
fn without(mut payload: Value, pointers: &[&str]) -> Value {
    for p in pointers {
        let (parent, field) = p.rsplit_once('/').expect("pointer");
        let removed = payload
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|o| o.remove(field));
        assert!(removed.is_some(), "the fixture has {p}");
    }
    payload
}

/// Fields Discord documents as optional, or leaves out of some interactions.
const OPTIONAL_EVERYWHERE: &[&str] = &[
    "/entitlements",
    "/locale",
    "/app_permissions",
    "/channel",
    "/member/deaf",
    "/member/mute",
    "/member/flags",
    "/member/joined_at",
    "/member/pending",
    "/member/permissions",
    "/member/premium_since",
    "/member/avatar",
    "/member/nick",
    "/member/user/discriminator",
    "/member/user/global_name",
    "/member/user/avatar",
    "/member/user/public_flags",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_without_optional_fields_are_accepted() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |_| {}).await;
        let (id, token) = new_interaction();
        let options = [
            ("image", json!("ghcr.io/acme/shop:1.2")),
            ("env", json!("shop")),
            ("tier", json!("prod")),
        ];
        let p = command_payload(&id, &token, &discord_id("alice"), &[], &["deploy"], &options);
        let mut fields = OPTIONAL_EVERYWHERE.to_vec();
        fields.push("/guild_locale");
        let (s, v) = rig.send(&without(p, &fields)).await;
        assert_eq!((s, v), (200, json!({ "type": 5 })), "deferred, not refused");
        let rid = rig.only_request().await;
        let (_, approve, _) = approval_buttons(&rig).await;

        let (id, token) = new_interaction();
        let click = component_payload(&id, &token, &discord_id("olga"), &[], &approve);
        let mut fields = OPTIONAL_EVERYWHERE.to_vec();
        fields.extend([
            "/message/timestamp",
            "/message/edited_timestamp",
            "/message/tts",
            "/message/mention_everyone",
            "/message/mentions",
            "/message/mention_roles",
            "/message/attachments",
            "/message/embeds",
            "/message/pinned",
            "/message/flags",
            "/message/components",
            "/message/channel_id",
        ]);
        let (s, v) = rig.send(&without(click, &fields)).await;
        assert_eq!((s, v["type"].as_u64()), (200, Some(7)), "{v}");
        assert!(
            v["data"]["content"]
                .as_str()
                .expect("c")
                .contains(&decided("olga", "approved")),
            "{v}"
        );
        rig.app.wait_for_state(&rid, &["succeeded"]).await;
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_answer_privately_once() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |_| {}).await;
        let (token, s, v) = rig.command("alice", &["whoami"], &[]).await;
        assert_eq!(
            (s, &v),
            (200, &json!({ "type": 5, "data": { "flags": 64 } })),
            "an ephemeral deferral"
        );
        let rid = rig.only_request().await;
        rig.app.wait_for_state(&rid, &["succeeded"]).await;
        let alice = discord_id("alice");
        rig.discord
            .fake
            .wait_until("the answer in the original", |f| {
                f.original(&token).is_some_and(|m| m.content.contains("You are alice"))
            })
            .await;
        let original = rig.discord.fake.original(&token).expect("original");
        assert_eq!(
            original.visible_to.as_deref(),
            Some(alice.as_str()),
            "only alice sees it"
        );
        // Nothing else: no follow-up, nothing in the channel, the answer not repeated.
        assert!(rig.discord.fake.posted().is_empty(), "{:#?}", rig.discord.fake.posted());
        let edits = rig
            .discord
            .fake
            .calls()
            .into_iter()
            .filter(|c| c.method == "PATCH")
            .count();
        let (_, view) = rig.app.get_as("alice", &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(edits, 1, "{:#?} {view:#}", rig.discord.fake.calls());

        // The `share` option posts the answer in the channel.
        let (token, _, v) = rig.command("alice", &["whoami"], &[("share", json!(true))]).await;
        assert_eq!(v, json!({ "type": 5 }), "a public deferral");
        rig.discord
            .fake
            .wait_until("the shared answer in the channel", |f| {
                f.original(&token)
                    .is_some_and(|m| m.visible_to.is_none() && m.content.contains("✅ finished in "))
                    && f.public().iter().any(|m| m.content.contains("You are alice"))
            })
            .await;
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_answer_shows_its_output_once_and_the_status_says_finished() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |_| {}).await;
        for (command, output) in [("whoami", "You are alice"), ("help", "Commands you can run")] {
            let (token, _, v) = rig.command("alice", &[command], &[("share", json!(true))]).await;
            assert_eq!(v, json!({ "type": 5 }), "a public deferral");
            rig.discord
                .fake
                .wait_until("the status says finished", |f| {
                    f.original(&token)
                        .is_some_and(|m| m.content.contains("✅ finished in "))
                })
                .await;
            let original = rig.discord.fake.original(&token).expect("original");
            assert!(!original.content.contains(output), "{}", original.content);
            let shown: Vec<String> = rig
                .discord
                .fake
                .public()
                .into_iter()
                .filter(|m| m.content.contains(output))
                .map(|m| m.content)
                .collect();
            assert_eq!(
                shown.len(),
                1,
                "{command}: the output once, in the follow-up: {shown:#?}"
            );
        }
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_action_outliving_the_token_still_delivers_every_message() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |c| c.discord.token_lifetime = "2s".parse().expect("duration")).await;
        rig.discord.fake.set_token_lifetime(Duration::from_secs(2));
        let (token, s, _) = rig.command("alice", &["hold"], &[("env", json!("long"))]).await;
        assert_eq!(s, 200);
        let rid = rig.only_request().await;
        rig.discord
            .fake
            .wait_until("progress in the status message while the token lasts", |f| {
                f.original(&token).is_some_and(|m| m.content.contains("holding"))
            })
            .await;
        // Not a wait for a condition: the scenario needs the 2 s token to run out mid-action.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        rig.app.probe.release.notify_one();
        rig.app.wait_for_state(&rid, &["succeeded"]).await;
        rig.discord
            .fake
            .wait_until("the status message shows the outcome", |f| {
                f.original(&token).is_some_and(|m| m.content.contains("released long"))
            })
            .await;
        let calls = rig.discord.fake.calls();
        let last = calls.last().expect("calls");
        assert!(
            last.path.starts_with(&format!("/channels/{CHANNEL_ID}/messages/")),
            "{calls:#?}"
        );
        assert_eq!(last.authorization.as_deref(), Some(&*format!("Bot {BOT_TOKEN}")));
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_discord_refuses_early_falls_back_to_the_channel() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        // deckhand believes the token lasts 15 minutes; the fake refuses it after one second.
        let rig = start(backend, |_| {}).await;
        rig.discord.fake.set_token_lifetime(Duration::from_secs(1));
        let (token, _, _) = rig.command("alice", &["hold"], &[("env", json!("early"))]).await;
        let rid = rig.only_request().await;
        rig.discord
            .fake
            .wait_until("status", |f| f.original(&token).is_some())
            .await;
        // Not a wait for a condition: the scenario needs the fake's 1 s token to run out.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        rig.app.probe.release.notify_one();
        rig.app.wait_for_state(&rid, &["succeeded"]).await;
        rig.discord
            .fake
            .wait_until("outcome in the channel", |f| {
                f.original(&token).is_some_and(|m| m.content.contains("released early"))
            })
            .await;
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out_without_losing_messages() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, |_| {}).await;
        rig.discord.fake.rate_limit_next(3);
        let (token, _, _) = rig
            .command(
                "alice",
                &["deploy"],
                &[("image", json!("nginx:1.27")), ("env", json!("busy"))],
            )
            .await;
        let rid = rig.only_request().await;
        rig.app.wait_for_state(&rid, &["succeeded"]).await;
        rig.discord
            .fake
            .wait_until("outcome and progress", |f| {
                f.original(&token).is_some_and(|m| m.content.contains("done with busy"))
                    && f.calls().iter().any(|c| {
                        c.method == "PATCH" && c.body["content"].as_str().is_some_and(|t| t.contains("counted busy"))
                    })
            })
            .await;
        assert_eq!(rig.discord.fake.rate_limited(), 3);
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_prod_deploy_from_discord_runs_on_the_cluster() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start_with_kube(backend).await;
        // A prod environment, made through the API with an ops approval.
        let (_, v) = rig.app.submit_as("olga", "env create payments prod").await;
        let env_id = v["request"]["id"].as_str().expect("id").to_owned();
        rig.app.approve("omar", &env_id).await;
        rig.app.wait_for_state(&env_id, &["succeeded"]).await;

        let (token, s, v) = rig
            .command(
                "alice",
                &["deploy"],
                &[
                    ("image", json!("nginx:1.27.3")),
                    ("env", json!("payments")),
                    ("replicas", json!(12)),
                ],
            )
            .await;
        assert_eq!((s, v), (200, json!({ "type": 5 })), "deferred");
        let all = rig.all_requests().await;
        let deploy = all
            .iter()
            .find(|r| r["command"] == "deploy")
            .expect("stored before the answer");
        let rid = deploy["id"].as_str().expect("id").to_owned();
        assert_eq!(deploy["state"], "pending_approval");
        assert_eq!(deploy["text"], "deploy nginx:1.27.3 to payments replicas=12");

        let (msg, approve, _) = approval_buttons(&rig).await;
        let (_, v) = rig.click("alice", &approve).await;
        assert!(is_ephemeral(&v), "self-approval refused: {v}");
        let kube = rig.kube.as_ref().expect("kube");
        assert!(kube.object("deployments", "payments", "nginx").is_none());
        let (_, v) = rig.click("otto", &approve).await;
        assert_eq!(v["type"], 7, "{v}");
        let done = rig.app.wait_for_state(&rid, &["succeeded", "failed"]).await;
        assert_eq!(done["request"]["state"], "succeeded", "{done:#}");
        let dep = kube
            .object("deployments", "payments", "nginx")
            .expect("deployment on the cluster");
        assert_eq!(dep["spec"]["replicas"], 12);
        rig.discord
            .fake
            .wait_until("original shows success", |f| {
                f.original(&token).is_some_and(|m| m.content.contains("✅ succeeded"))
            })
            .await;
        let fake = &rig.discord.fake;
        assert!(
            fake.message(&msg)
                .is_some_and(|m| m.components == json!([]) && m.content.contains(&decided("otto", "approved"))),
            "{:?}",
            fake.message(&msg)
        );
        // A quiet conversation: the 12-replica rollout edits the status message at most
        // once a second; the follow-ups are the approval prompt alone (at most 3).
        let posted: Vec<String> = fake.posted().into_iter().map(|m| m.content).collect();
        assert!(posted.len() <= 3, "at most 3 follow-ups: {posted:#?}");
        assert!(posted.iter().all(|m| !m.contains("/12 updated")), "{posted:#?}");
        let calls = fake.calls();
        let edits: Vec<_> = calls
            .iter()
            .filter(|c| c.method == "PATCH" && c.path.ends_with("/messages/@original"))
            .collect();
        let progress: Vec<_> = edits
            .iter()
            .filter(|c| {
                c.body["content"]
                    .as_str()
                    .is_some_and(|t| t.contains(" running") && t.contains("/12 updated"))
            })
            .collect();
        assert!(
            !progress.is_empty(),
            "rollout progress in the status message: {edits:#?}"
        );
        for pair in progress.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(gap >= Duration::from_millis(950), "progress edits {gap:?} apart");
        }
        assert!(
            fake.calls().iter().all(|c| !c.path.starts_with("/channels/")),
            "everything went through the interaction webhook"
        );
        rig.app.shutdown().await;
    }
}

// ---- command text and registration ----

fn root() -> Principal {
    Principal {
        user: "root".into(),
        groups: BTreeSet::from(["admins".to_owned(), "ops".to_owned(), "developers".to_owned()]),
    }
}

fn builtin_router(config: &Config) -> deckhand::commands::Router {
    Builder::new(config.clone()).load_specs().expect("built-in specs load")
}

/// Discord's options for `args` of `spec`, as a person would fill them in (JSON as Discord
/// sends it, decoded by serenity).
fn options_for(spec: &deckhand::commands::CommandSpec, args: &BTreeMap<String, String>) -> Vec<CommandDataOption> {
    let leaf: Vec<Value> = args
        .iter()
        .map(|(name, v)| {
            let kind = &spec.args.iter().find(|a| &a.name == name).expect("arg").kind;
            match kind {
                deckhand::commands::spec::ArgType::Int { .. } => {
                    json!({ "name": name, "type": 4, "value": v.parse::<i64>().expect("int") })
                }
                _ => json!({ "name": name, "type": 3, "value": v }),
            }
        })
        .collect();
    let words: Vec<&str> = spec.name.split(' ').collect();
    let options = match words.as_slice() {
        [one] => json!([{ "name": one, "type": 1, "options": leaf }]),
        [group, one] => json!([{ "name": group, "type": 2, "options": [{ "name": one, "type": 1, "options": leaf }] }]),
        _ => panic!("spec names have one or two words"),
    };
    serde_json::from_value(options).expect("options decode")
}

#[tokio::test]
async fn every_spec_example_round_trips_through_discord_options() {
    // Registration reads the configuration and specs only; it never opens the store.
    let config = test_config("sqlite::memory:");
    let router = builtin_router(&config);
    let who = root();
    let mut checked = 0;
    for spec in router.specs() {
        let mut cases: Vec<String> = spec.examples.clone();
        cases.push(spec.name.clone());
        for text in cases {
            // Only what the person typed, not defaults, goes into Discord's options.
            let Ok(routed) = router.route(&who, &text) else {
                continue;
            };
            let typed: BTreeMap<String, String> = spec
                .pattern
                .captures(&text)
                .map(|c| {
                    spec.args
                        .iter()
                        .filter_map(|a| c.name(&a.name).map(|m| (a.name.clone(), m.as_str().to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let options = options_for(spec, &typed);
            let rebuilt = command_text::command_text(&router, &options)
                .unwrap_or_else(|e| panic!("{}: `{text}`: {e}", spec.name));
            let again = router
                .route(&who, &rebuilt)
                .unwrap_or_else(|e| panic!("{}: `{text}` -> `{rebuilt}`: {e}", spec.name));
            assert_eq!(again.args, routed.args, "`{text}` -> `{rebuilt}`");
            checked += 1;
        }
    }
    assert!(checked >= router.specs().len(), "{checked}");
    // key=value arguments come back in the spec's shape, in the pattern's order.
    let spec = router.get("deploy").expect("deploy");
    let args = BTreeMap::from([
        ("port".to_owned(), "8080".to_owned()),
        ("image".to_owned(), "nginx:1.27".to_owned()),
        ("env".to_owned(), "web".to_owned()),
        ("replicas".to_owned(), "3".to_owned()),
    ]);
    assert_eq!(
        command_text::render(spec, &args).expect("renders"),
        "deploy nginx:1.27 to web replicas=3 port=8080"
    );
    let spec = router.get("env create").expect("env create");
    let args = BTreeMap::from([("name".to_owned(), "x".to_owned()), ("ttl".to_owned(), "8h".to_owned())]);
    assert_eq!(command_text::render(spec, &args).expect("renders"), "env create x 8h");
    // The shared fixture's command.
    let fixture = discord::decode_interaction(
        serde_json::from_str(include_str!("support/discord/fixtures/application_command.json")).expect("JSON"),
    )
    .expect("fixture decodes");
    let serenity::model::application::Interaction::Command(ci) = fixture else {
        panic!("a command")
    };
    assert_eq!(
        command_text::command_text(&router, &ci.data.options).expect("text"),
        "env create checkout-preview 8h"
    );
}

/// Discord's documented limits, checked on the JSON independently of the builder.
fn check_discord_limits(cmd: &Value, problems: &mut Vec<String>) {
    fn chars(v: &Value) -> usize {
        v.as_str().map_or(0, |s| s.chars().count())
    }
    fn total(o: &Value) -> usize {
        chars(&o["name"])
            + chars(&o["description"])
            + o["choices"]
                .as_array()
                .map_or(0, |c| c.iter().map(|c| chars(&c["name"]) + chars(&c["value"])).sum())
            + o["options"].as_array().map_or(0, |os| os.iter().map(total).sum())
    }
    fn walk(o: &Value, path: &str, depth: usize, problems: &mut Vec<String>) {
        let name = o["name"].as_str().unwrap_or_default();
        let path = format!("{path}/{name}");
        let name_ok = (1..=32).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_lowercase() || c.is_numeric() || c == '-' || c == '_')
            && name.chars().all(|c| !c.is_uppercase());
        if !name_ok {
            problems.push(format!("{path}: bad name"));
        }
        if !(1..=100).contains(&chars(&o["description"])) {
            problems.push(format!("{path}: description length"));
        }
        let options = o["options"].as_array().cloned().unwrap_or_default();
        if options.len() > 25 {
            problems.push(format!("{path}: {} options", options.len()));
        }
        let choices = o["choices"].as_array().cloned().unwrap_or_default();
        if choices.len() > 25 {
            problems.push(format!("{path}: {} choices", choices.len()));
        }
        for c in &choices {
            if !(1..=100).contains(&chars(&c["name"])) || chars(&c["value"]) > 100 {
                problems.push(format!("{path}: choice {c}"));
            }
        }
        // Required options first.
        let mut seen_optional = false;
        for opt in &options {
            let required = opt["required"] == true;
            if required && seen_optional {
                problems.push(format!("{path}: required option after an optional one"));
            }
            seen_optional |= !required;
        }
        for v in ["min_value", "max_value"] {
            if let Some(n) = o[v].as_i64()
                && n.abs() > 9_007_199_254_740_991
            {
                problems.push(format!("{path}: {v}"));
            }
        }
        let kind = o["type"].as_u64().unwrap_or(0);
        if depth > 0 && kind == 2 && depth != 1 {
            problems.push(format!("{path}: group nested too deep"));
        }
        if !(1..=11).contains(&kind) && depth > 0 {
            problems.push(format!("{path}: option type {kind}"));
        }
        for opt in &options {
            walk(opt, &path, depth + 1, problems);
        }
    }
    walk(cmd, "", 0, problems);
    if total(cmd) > 4000 {
        problems.push(format!("total characters {}", total(cmd)));
    }
}

#[tokio::test]
async fn registration_json_for_the_repositorys_commands_fits_discords_limits() {
    // Registration reads the configuration and specs only; it never opens the store.
    let config = test_config("sqlite::memory:");
    let router = builtin_router(&config);
    let printed = discord::register(&config, &router, None, true).await.expect("dry run");
    let json: Value = serde_json::from_str(&printed).expect("JSON");
    let cmds = json.as_array().expect("a list for the bulk overwrite");
    assert_eq!(cmds.len(), 1);
    let cmd = &cmds[0];
    let mut problems = Vec::new();
    check_discord_limits(cmd, &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(cmd["name"], "deckhand");
    let top = cmd["options"].as_array().expect("options");
    let find = |list: &[Value], name: &str| list.iter().find(|o| o["name"] == name).cloned().expect(name);
    // Every spec is there, as a subcommand or in a group.
    for spec in router.specs() {
        let words: Vec<&str> = spec.name.split(' ').collect();
        let sub = match words.as_slice() {
            [one] => find(top, one),
            [g, one] => {
                let group = find(top, g);
                assert_eq!(group["type"], 2);
                find(group["options"].as_array().expect("subs"), one)
            }
            _ => unreachable!(),
        };
        assert_eq!(sub["type"], 1, "{}", spec.name);
        assert_eq!(sub["description"], spec.help.as_str());
        let names: BTreeSet<&str> = sub["options"]
            .as_array()
            .map(|o| o.iter().filter_map(|o| o["name"].as_str()).collect())
            .unwrap_or_default();
        let mut args: BTreeSet<&str> = spec.args.iter().map(|a| a.name.as_str()).collect();
        // Read-only commands also take `share` (post the answer in the channel).
        if spec.answer == deckhand::commands::spec::Answer::Private {
            args.insert("share");
            let share = find(sub["options"].as_array().expect("options"), "share");
            assert_eq!(share["type"].as_u64(), Some(5));
            assert_ne!(share["required"], json!(true), "share is optional");
        }
        assert_eq!(names, args, "{}", spec.name);
    }
    let deploy = find(top, "deploy");
    let replicas = find(deploy["options"].as_array().expect("o"), "replicas");
    assert_eq!(
        (
            replicas["type"].as_u64(),
            replicas["min_value"].as_i64(),
            replicas["max_value"].as_i64()
        ),
        (Some(4), Some(1), Some(50))
    );
    let create = find(find(top, "env")["options"].as_array().expect("o"), "create");
    let tier = find(create["options"].as_array().expect("o"), "tier");
    let choices: Vec<&str> = tier["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .filter_map(|c| c["value"].as_str())
        .collect();
    assert_eq!(choices, ["dev", "prod", "stage"]);
    let name = find(create["options"].as_array().expect("o"), "name");
    assert_eq!(name["required"], true);
    let requests = find(top, "requests");
    assert_eq!(
        find(requests["options"].as_array().expect("o"), "scope")["choices"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[tokio::test]
async fn specs_beyond_discords_limits_fail_naming_the_spec() {
    // Registration reads the configuration and specs only; it never opens the store.
    let config = test_config("sqlite::memory:");
    let values: Vec<String> = (0..26).map(|i| format!("v{i}")).collect();
    let yaml = format!(
        r#"
- name: env create big
  help: Three words cannot be expressed
  pattern: '^env create big$'
  action: whoami
  allow: [everyone]
- name: chatty
  help: {long}
  pattern: '^chatty$'
  action: whoami
  allow: [everyone]
- name: picky
  help: Too many choices
  pattern: '^picky (?P<pick>\S+)$'
  args:
    pick: {{ type: enum, values: [{values}] }}
  action: whoami
  allow: [everyone]
- name: fine
  help: This one fits
  pattern: '^fine$'
  action: whoami
  allow: [everyone]
"#,
        long = "x".repeat(101),
        values = values.join(", ")
    );
    let router = Builder::new(config.clone())
        .specs(vec![("commands/big.yaml".into(), yaml)])
        .load_specs()
        .expect("valid specs");
    let err = discord::register(&config, &router, None, true)
        .await
        .expect_err("too big")
        .to_string();
    for needle in [
        "commands/big.yaml: command `env create big`: has 3 words",
        "command `chatty`: help is 101 characters",
        "command `picky`: argument `pick` has 26 choices",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    assert!(!err.contains("`fine`"), "{err}");
    // Too many top-level commands.
    let many: String = (0..26)
        .map(|i| format!("- {{ name: c{i}, help: h, pattern: '^c{i}$', action: whoami, allow: [everyone] }}\n"))
        .collect();
    let router = Builder::new(config.clone())
        .specs(vec![("commands/many.yaml".into(), many)])
        .load_specs()
        .expect("valid specs");
    let err = discord::register(&config, &router, None, true)
        .await
        .expect_err("too many")
        .to_string();
    // 26 specs and `build`, the command builder.
    assert!(err.contains("27 top-level commands"), "{err}");
}

#[tokio::test]
async fn register_bulk_overwrites_globally_or_in_a_guild_through_rate_limits() {
    let discord_srv = FakeDiscordServer::start().await;
    // Registration reads the configuration and specs only; it never opens the store.
    let mut config = test_config("sqlite::memory:");
    let router = builtin_router(&config);
    // Not configured: a clear error, nothing sent.
    let err = discord::register(&config, &router, None, false)
        .await
        .expect_err("no app id");
    assert!(err.to_string().contains("application_id"), "{err}");
    with_discord(&mut config, &discord_srv, &InteractionSigner::generate());
    discord_srv.fake.rate_limit_next(1);
    let out = discord::register(&config, &router, Some(discord_fake::GUILD_ID), false)
        .await
        .expect("registers");
    assert!(out.contains("in guild"), "{out}");
    let out = discord::register(&config, &router, None, false)
        .await
        .expect("registers");
    assert!(out.contains("globally"), "{out}");
    let puts: Vec<_> = discord_srv
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 3, "one 429, then two overwrites");
    assert_eq!(
        puts[1].path,
        format!(
            "/applications/{APPLICATION_ID}/guilds/{}/commands",
            discord_fake::GUILD_ID
        )
    );
    assert_eq!(puts[2].path, format!("/applications/{APPLICATION_ID}/commands"));
    assert_eq!(puts[2].authorization.as_deref(), Some(&*format!("Bot {BOT_TOKEN}")));
    assert_eq!(puts[2].body[0]["name"], "deckhand");
    assert!(matches!(
        discord::register(&config, &router, Some("../x"), false).await,
        Err(discord::DiscordError::BadGuild(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_close_button_on_a_proxy_link_closes_it() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start_with_kube(backend).await;
        for text in ["env create shop", "deploy ghcr.io/acme/shop:1.4.2 to shop port=8080"] {
            let (_, v) = rig.app.submit_as("alice", text).await;
            let id = v["request"]["id"].as_str().expect("id").to_owned();
            let done = rig.app.wait_for_state(&id, &["succeeded", "failed"]).await;
            assert_eq!(done["request"]["state"], "succeeded", "{done:#}");
        }
        let (_, s, _) = rig
            .command(
                "alice",
                &["proxy", "open"],
                &[("app", json!("shop")), ("env", json!("shop"))],
            )
            .await;
        assert_eq!(s, 200);
        rig.discord
            .fake
            .wait_until("the link with its Close button", |f| {
                f.posted()
                    .iter()
                    .any(|m| m.components.to_string().contains("Close link"))
            })
            .await;
        let message = rig
            .discord
            .fake
            .posted()
            .into_iter()
            .find(|m| m.components.to_string().contains("Close link"))
            .expect("link message");
        // The link is a link button (it opens the URL), not text in the code block.
        let open = message.components[0]["components"][0].clone();
        assert_eq!(
            (open["type"].clone(), open["style"].clone()),
            (json!(2), json!(5)),
            "{open}"
        );
        assert!(open["url"].as_str().expect("url").contains("/p/"), "{open}");
        assert!(open.get("custom_id").is_none(), "{open}");
        assert!(!message.content.contains("/p/"), "{}", message.content);
        // The link is a credential: only alice sees it, the channel only hears that it was sent.
        assert_eq!(message.flags, discord_fake::EPHEMERAL, "an ephemeral follow-up");
        assert_eq!(message.visible_to.as_deref(), Some(discord_id("alice").as_str()));
        let public = rig.discord.fake.public();
        assert!(
            public
                .iter()
                .all(|m| !m.content.contains("/p/") && !m.components.to_string().contains("/p/")),
            "the link is in a channel message: {public:#?}"
        );
        // The channel's line is written by the same outbox, possibly a beat after the link.
        rig.discord
            .fake
            .wait_until("the channel hears the link was sent privately", |f| {
                f.public().iter().any(|m| m.content.contains("sent privately"))
            })
            .await;
        let button = message.components[0]["components"][1].clone();
        assert_eq!(button["label"], "Close link");
        assert_eq!(button["style"], 4, "danger");
        let custom_id = button["custom_id"].as_str().expect("custom_id").to_owned();

        let (_, v) = rig.click("eve", &custom_id).await;
        assert!(is_ephemeral(&v), "{v}");
        assert!(
            v["data"]["content"]
                .as_str()
                .unwrap_or_default()
                .contains("may not run `proxy close`"),
            "{v}"
        );
        let (_, v) = rig
            .click("bob", &custom_id.replacen("dh:r:", "dh:r:ZW52IGRlbGV0ZSBzaG9w", 1))
            .await;
        assert!(is_ephemeral(&v), "a changed button does nothing: {v}");

        let (_, v) = rig.click("bob", &custom_id).await;
        assert_eq!(v, json!({ "type": 5 }), "deferred like a typed command");
        let close = rig
            .all_requests()
            .await
            .into_iter()
            .find(|r| r["command"] == "proxy close")
            .expect("the click stored a proxy close request");
        assert_eq!(close["requester"], "bob");
        let id = close["id"].as_str().expect("id").to_owned();
        let done = rig.app.wait_for_state(&id, &["succeeded", "failed"]).await;
        assert!(
            done["request"]["outcome"]
                .as_str()
                .unwrap_or_default()
                .contains("closed after 0 requests"),
            "{done:#}"
        );
        assert_eq!(rig.all_requests().await.len(), 4, "nothing else ran");
        rig.app.shutdown().await;
    }
}

#[test]
fn the_fake_refuses_answers_over_discords_limits() {
    use discord_fake::limits::check_response;
    let text_row = |i: usize| json!({ "type": 1, "components": [{ "type": 4, "custom_id": format!("f{i}"), "style": 1, "label": "x" }] });
    let modal = |rows: usize| json!({ "type": 9, "data": { "custom_id": "m", "title": "t", "components": (0..rows).map(text_row).collect::<Vec<_>>() } });
    assert!(check_response(&modal(5)).is_empty());
    assert!(!check_response(&modal(6)).is_empty(), "six rows");
    let mut long = modal(1);
    long["data"]["custom_id"] = json!("x".repeat(101));
    assert!(!check_response(&long).is_empty(), "custom_id over 100");
    let select = |n: usize| {
        let options: Vec<Value> = (0..n)
            .map(|i| json!({ "label": i.to_string(), "value": i.to_string() }))
            .collect();
        json!({ "type": 4, "data": { "content": "pick", "components": [{ "type": 1, "components": [{ "type": 3, "custom_id": "s", "options": options }] }] } })
    };
    assert!(check_response(&select(25)).is_empty());
    assert!(!check_response(&select(26)).is_empty(), "26 options");
}

/// How a decision names who decided: as a mention (it pings no one: `allowed_mentions`).
fn decided(user: &str, verb: &str) -> String {
    format!("<@{}> {verb}", discord_id(user))
}
