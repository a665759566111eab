//! The Discord command builder (`/deckhand build`) against the Discord fake: pick a command
//! in a private select, fill the modal, and the request is stored and answered exactly as
//! if the command had been typed; forged or someone else's forms change nothing; a spec set
//! with more commands than one message holds is still reachable. Every answer is checked
//! against Discord's limits (tests/support/discord/limits.rs).

#[path = "support/discord/mod.rs"]
mod discord_fake;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::time::Duration;

use deckhand::{configuration::Config, startup::Builder};
use discord_fake::{
    APPLICATION_ID, BOT_TOKEN, FakeDiscordServer, InteractionSigner, command_payload, component_payload,
    modal_submit_payload, new_interaction, unix_now,
};
use serde_json::{Value, json};
use support::{Backend, TestApp, TestDb, backends, discord_id, test_config};

struct Rig {
    app: TestApp,
    discord: FakeDiscordServer,
    signer: InteractionSigner,
    _kube: Option<kube_fake::KubeTestServer>,
    _db: TestDb,
}

/// The server with `specs` (the built-in ones when `None`, against the Kubernetes fake).
async fn start(backend: Backend, specs: Option<Vec<(String, String)>>) -> Rig {
    let discord = FakeDiscordServer::start().await;
    let signer = InteractionSigner::generate();
    let db = TestDb::new(backend).await;
    let mut config: Config = test_config(&db.url);
    config.discord.public_key = signer.public_key_hex();
    config.discord.application_id = APPLICATION_ID.into();
    config.discord.bot_token = BOT_TOKEN.into();
    config.discord.api_base = discord.api_base();
    let mut kube = None;
    if specs.is_none() {
        let k = kube_fake::KubeTestServer::start().await;
        k.set_step(Duration::from_millis(15));
        config.kubernetes.url = k.url();
        kube = Some(k);
    }
    support::init_tls();
    let mut builder = Builder::new(config);
    if let Some(s) = specs {
        builder = builder.specs(s);
    }
    let running = builder
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("app starts");
    Rig {
        app: TestApp::from_running(running),
        discord,
        signer,
        _kube: kube,
        _db: db,
    }
}

impl Rig {
    /// Sends `payload` signed now, as Discord would, and records the initial response.
    async fn send(&self, payload: &Value) -> Value {
        let token = payload["token"].as_str().expect("token");
        let user = payload["member"]["user"]["id"].as_str().unwrap_or_default();
        self.discord.fake.issue_token_to(token, user);
        let body = payload.to_string();
        let ts = unix_now().to_string();
        let resp = self
            .app
            .http
            .post(format!("{}/discord/interactions", self.app.url))
            .header("content-type", "application/json")
            .header("x-signature-timestamp", &ts)
            .header("x-signature-ed25519", self.signer.sign(&ts, body.as_bytes()))
            .body(body)
            .send()
            .await
            .expect("POST interaction");
        assert_eq!(resp.status().as_u16(), 200);
        let answer: Value = resp.json().await.expect("JSON answer");
        let refused = discord_fake::limits::check_response(&answer);
        assert!(refused.is_empty(), "Discord would refuse {answer:#}: {refused:?}");
        self.discord.fake.responded(token, &answer);
        answer
    }

    /// `/deckhand <words> <options>` by `user`: (token, answer).
    async fn command(&self, user: &str, words: &[&str], options: &[(&str, Value)]) -> (String, Value) {
        let (id, token) = new_interaction();
        let answer = self
            .send(&command_payload(&id, &token, &discord_id(user), &[], words, options))
            .await;
        (token, answer)
    }

    /// A pick of `value` in the select `custom_id` by `user`.
    async fn pick(&self, user: &str, custom_id: &str, value: &str) -> Value {
        let (id, token) = new_interaction();
        let mut p = component_payload(&id, &token, &discord_id(user), &[], custom_id);
        p["data"] = json!({ "component_type": 3, "custom_id": custom_id, "values": [value] });
        self.send(&p).await
    }

    /// A click on `custom_id`, a component of the message whose body deckhand sent as
    /// `message` (Discord hands the whole message over with the click, ephemeral ones too).
    async fn click_on(&self, user: &str, custom_id: &str, message: &Value) -> Value {
        let (id, token) = new_interaction();
        let mut p = component_payload(&id, &token, &discord_id(user), &[], custom_id);
        for key in ["content", "embeds", "components", "flags"] {
            if !message[key].is_null() {
                p["message"][key] = message[key].clone();
            }
        }
        self.send(&p).await
    }

    async fn click(&self, user: &str, custom_id: &str) -> Value {
        let (id, token) = new_interaction();
        self.send(&component_payload(&id, &token, &discord_id(user), &[], custom_id))
            .await
    }

    /// Submits the modal `custom_id` with `inputs` as `user`: (token, answer).
    async fn submit(&self, user: &str, custom_id: &str, inputs: &[(&str, &str)]) -> (String, Value) {
        let (id, token) = new_interaction();
        let p = modal_submit_payload(&id, &token, &discord_id(user), custom_id, inputs);
        (token.clone(), self.send(&p).await)
    }

    async fn requests(&self) -> Vec<Value> {
        let (_, v) = self.app.get_as(support::ADMIN, "/api/v1/requests?scope=all").await;
        v["requests"].as_array().cloned().unwrap_or_default()
    }
}

/// The selects of a builder message: (custom_id, option values).
fn selects(answer: &Value) -> Vec<(String, Vec<String>)> {
    answer["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["type"] == 3)
        .map(|c| {
            let values = c["options"].as_array().into_iter().flatten();
            let values = values.filter_map(|o| o["value"].as_str().map(str::to_owned)).collect();
            (c["custom_id"].as_str().expect("custom_id").to_owned(), values)
        })
        .collect()
}

/// The select offering `command`.
fn select_for(answer: &Value, command: &str) -> String {
    selects(answer)
        .into_iter()
        .find(|(_, values)| values.iter().any(|v| v == command))
        .unwrap_or_else(|| panic!("`{command}` is not offered: {answer:#}"))
        .0
}

/// The labels of a modal's text inputs.
fn labels(modal: &Value) -> Vec<String> {
    modal["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["components"][0]["label"].as_str().map(str::to_owned))
        .collect()
}

/// The buttons of an answer: (label, custom_id).
fn buttons(answer: &Value) -> Vec<(String, String)> {
    answer["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["type"] == 2)
        .map(|c| {
            (
                c["label"].as_str().unwrap_or_default().to_owned(),
                c["custom_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The text inputs of a modal: (custom_id, value shown, empty when none).
fn input_values(modal: &Value) -> Vec<(String, String)> {
    modal["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let i = &r["components"][0];
            (
                i["custom_id"].as_str().unwrap_or_default().to_owned(),
                i["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn is_ephemeral(v: &Value) -> bool {
    v["type"] == 4 && v["data"]["flags"] == 64
}

/// A request's content with its request id, environment name and the time left until it
/// expires (`(in 1d 23h)`, rounded from when it finished) made neutral.
fn neutral(text: &str, id: &str, name: &str) -> String {
    let text = text.replace(id, "<id>").replace(name, "<name>");
    match (text.find(" (in "), text.rfind(')')) {
        (Some(start), Some(end)) if end > start => format!("{}{}", &text[..start], &text[end + 1..]),
        _ => text,
    }
}

/// The original response of `token` once it holds `what`.
async fn answered(rig: &Rig, token: &str, what: &str) -> String {
    rig.discord
        .fake
        .wait_until(what, |f| f.original(token).is_some_and(|m| m.content.contains(what)))
        .await;
    rig.discord.fake.original(token).expect("original").content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_env_create_is_stored_and_answered_as_if_typed() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, None).await;
        let list = rig.command("alice", &["build"], &[]).await.1;
        assert!(is_ephemeral(&list), "the list is private: {list:#}");
        let offered: Vec<String> = selects(&list).into_iter().flat_map(|(_, v)| v).collect();
        assert!(offered.iter().any(|c| c == "env create"), "{offered:?}");
        let modal = rig.pick("alice", &select_for(&list, "env create"), "env create").await;
        assert_eq!(modal["type"], 9, "a modal: {modal:#}");
        assert_eq!(
            labels(&modal),
            ["name", "tier (dev/prod/stage) (optional)", "ttl (optional)"]
        );
        let form = modal["data"]["custom_id"].as_str().expect("form id").to_owned();

        // A bad field is named, privately, and nothing is stored.
        let (_, bad) = rig
            .submit("alice", &form, &[("name", "Bad_Name"), ("ttl", "soon")])
            .await;
        assert!(is_ephemeral(&bad), "{bad:#}");
        let said = bad["data"]["content"].as_str().unwrap_or_default();
        assert!(said.contains("**name**") && said.contains("**ttl**"), "{said}");
        assert!(rig.requests().await.is_empty(), "nothing stored for a bad form");
        let shown: Vec<&str> = bad["data"]["embeds"][0]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["value"].as_str())
            .collect();
        assert!(
            shown.contains(&"Bad\\_Name"),
            "what was typed is shown escaped, not as markdown: {bad:#}"
        );

        // "Fix it" reopens the form holding what was typed; only for alice.
        let fix = buttons(&bad)
            .into_iter()
            .find(|(label, _)| label == "Fix it")
            .unwrap_or_else(|| panic!("a Fix it button: {bad:#}"))
            .1;
        let refused = rig.click_on("bob", &fix, &bad["data"]).await;
        assert!(is_ephemeral(&refused), "bob gets no form: {refused:#}");
        let again = rig.click_on("alice", &fix, &bad["data"]).await;
        assert_eq!(again["type"], 9, "the form again: {again:#}");
        assert_eq!(again["data"]["custom_id"], form.as_str(), "the same form");
        assert_eq!(
            input_values(&again),
            [("name", "Bad_Name"), ("tier", "dev"), ("ttl", "soon")].map(|(k, v)| (k.to_owned(), v.to_owned())),
            "what alice typed is still there (tier keeps its default)"
        );

        let (built, answer) = rig
            .submit("alice", &form, &[("name", "preview-1"), ("tier", "dev"), ("ttl", "2d")])
            .await;
        let (typed, typed_answer) = rig
            .command(
                "alice",
                &["env", "create"],
                &[
                    ("name", json!("preview-2")),
                    ("tier", json!("dev")),
                    ("ttl", json!("2d")),
                ],
            )
            .await;
        assert_eq!(answer, typed_answer, "the same deferral as a typed command");
        let requests = rig.requests().await;
        let find = |name: &str| {
            let r = requests
                .iter()
                .find(|r| r["text"].as_str().is_some_and(|t| t.contains(name)))
                .unwrap_or_else(|| panic!("no request for {name}: {requests:#?}"));
            (r["id"].as_str().expect("id").to_owned(), r.clone())
        };
        let (built_id, built_req) = find("preview-1");
        let (typed_id, typed_req) = find("preview-2");
        assert_eq!(built_req["text"], "env create preview-1 dev 2d");
        for key in ["requester", "surface", "command", "channel"] {
            assert_eq!(built_req[key], typed_req[key], "{key}");
        }
        rig.app.wait_for_state(&built_id, &["succeeded"]).await;
        rig.app.wait_for_state(&typed_id, &["succeeded"]).await;
        let built_says = answered(&rig, &built, "succeeded").await;
        let typed_says = answered(&rig, &typed, "succeeded").await;
        assert_eq!(
            neutral(&built_says, &built_id, "preview-1"),
            neutral(&typed_says, &typed_id, "preview-2"),
            "the channel shows the same"
        );
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_someone_elses_builder_steps_change_nothing() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, None).await;
        let list = rig.command("alice", &["build"], &[]).await.1;
        let select = select_for(&list, "env create");
        let modal = rig.pick("alice", &select, "env create").await;
        let form = modal["data"]["custom_id"].as_str().expect("form id").to_owned();
        let fill = [("name", "stolen"), ("tier", "dev")];

        // bob submits alice's form; someone edits the command in the id; an unsigned id.
        let forged = form.replacen("env create", "env delete", 1);
        assert_ne!(forged, form);
        for (who, id) in [
            ("bob", form.as_str()),
            ("alice", &forged),
            ("alice", "dh:b:menv create:AAAAAAAAAAAAAAAAAAAAAA"),
        ] {
            let (_, v) = rig.submit(who, id, &fill).await;
            assert!(is_ephemeral(&v), "{v:#}");
            assert!(
                v["data"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("nothing was done"),
                "{v:#}"
            );
        }
        // bob picking in alice's list gets no form either.
        let v = rig.pick("bob", &select, "env create").await;
        assert!(is_ephemeral(&v), "{v:#}");
        assert!(rig.requests().await.is_empty(), "nothing stored");
        assert!(rig.discord.fake.calls().is_empty(), "nothing sent to Discord");

        // Alice's own form still works.
        let (_, v) = rig.submit("alice", &form, &fill).await;
        assert_eq!(v["type"], 5, "{v:#}");
        assert_eq!(rig.requests().await.len(), 1);
        rig.app.shutdown().await;
    }
}

/// 150 commands in 6 groups of 25, each taking six arguments.
fn many_specs() -> Vec<(String, String)> {
    let mut yaml = String::new();
    for g in 0..6 {
        for c in 0..25 {
            yaml.push_str(&format!(
                "- name: g{g} c{c}\n  help: command {c} of group {g}\n  pattern: '^g{g} c{c} (?P<a>\\S+) (?P<b>\\S+)(?: (?P<c>\\S+))?(?: (?P<d>\\S+))?(?: (?P<e>\\S+))?(?: (?P<f>\\S+))?$'\n  args:\n    a: {{ type: name }}\n    b: {{ type: name }}\n    c: {{ type: name, optional: true }}\n    d: {{ type: name, optional: true }}\n    e: {{ type: name, optional: true }}\n    f: {{ type: name, optional: true }}\n  action: whoami\n  allow: [everyone]\n"
            ));
        }
    }
    vec![("commands/many.yaml".into(), yaml)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_commands_than_one_message_holds_are_paged_and_reachable() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, Some(many_specs())).await;
        let first = rig.command("alice", &["build"], &[]).await.1;
        assert!(is_ephemeral(&first), "{first:#}");
        let on_first: Vec<String> = selects(&first).into_iter().flat_map(|(_, v)| v).collect();
        assert_eq!(on_first.len(), 100, "four selects of 25, then the page buttons");
        let next = first["data"]["components"][4]["components"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["label"] == "Next"))
            .and_then(|b| b["custom_id"].as_str())
            .expect("a Next button")
            .to_owned();
        let second = rig.click("alice", &next).await;
        assert_eq!(second["type"], 7, "the list is updated in place: {second:#}");
        let on_second: Vec<String> = selects(&second).into_iter().flat_map(|(_, v)| v).collect();
        assert_eq!(on_second.len(), 50);
        assert!(on_second.iter().all(|c| !on_first.contains(c)));

        // The last command, with six arguments: four inputs of their own and one for the rest.
        let modal = rig.pick("alice", &select_for(&second, "g5 c24"), "g5 c24").await;
        assert_eq!(labels(&modal).len(), 5, "{modal:#}");
        let form = modal["data"]["custom_id"].as_str().expect("form").to_owned();
        let (_, bad) = rig
            .submit("alice", &form, &[("a", "x"), ("b", "y"), ("+more", "zz=1")])
            .await;
        assert!(
            bad["data"]["content"].as_str().unwrap_or_default().contains("**zz**"),
            "{bad:#}"
        );
        let (_, v) = rig
            .submit("alice", &form, &[("a", "x"), ("b", "y"), ("+more", "e=five\nf=six")])
            .await;
        assert_eq!(v["type"], 5, "{v:#}");
        let requests = rig.requests().await;
        assert_eq!(requests.len(), 1, "{requests:#?}");
        // The optional c and d got inputs of their own (left empty).
        assert_eq!(requests[0]["text"], "g5 c24 x y five six");
        rig.app.shutdown().await;
    }
}

#[test]
fn the_fake_refuses_selects_and_inputs_over_discords_limits() {
    use discord_fake::limits::check_response;
    let message = |row: Value| json!({ "type": 4, "data": { "content": "x", "components": [row] } });
    let option = |label: &str| json!({ "label": label, "value": "v" });
    let select =
        |options: Vec<Value>| json!({ "type": 1, "components": [{ "type": 3, "custom_id": "s", "options": options }] });
    assert!(check_response(&message(select(vec![option("ok")]))).is_empty());
    assert!(!check_response(&message(select(vec![option(&"x".repeat(101))]))).is_empty());
    let mut two = select(vec![option("ok")]);
    two["components"]
        .as_array_mut()
        .expect("row")
        .push(json!({ "type": 2, "style": 2, "label": "b", "custom_id": "b" }));
    assert!(!check_response(&message(two)).is_empty(), "a button beside a select");
    let input = |key: &str, v: Value| {
        let mut i = json!({ "type": 4, "custom_id": "i", "style": 1, "label": "l" });
        i[key] = v;
        json!({ "type": 9, "data": { "custom_id": "m", "title": "t", "components": [{ "type": 1, "components": [i] }] } })
    };
    assert!(check_response(&input("placeholder", json!("p"))).is_empty());
    assert!(!check_response(&input("placeholder", json!("p".repeat(101)))).is_empty());
    assert!(!check_response(&input("label", json!("l".repeat(46)))).is_empty());
    assert!(!check_response(&input("max_length", json!(4001))).is_empty());
    let rows: Vec<Value> = (0..6)
        .map(|i| {
            let mut row = select(vec![option("ok")]);
            row["components"][0]["custom_id"] = json!(format!("s{i}"));
            row
        })
        .collect();
    let six = json!({ "type": 4, "data": { "content": "x", "components": rows } });
    assert!(!check_response(&six).is_empty(), "six rows");
}

/// Commands without arguments (one changing things, one read-only) and one whose sixth
/// argument is free text, for the confirmation and "Other arguments".
fn small_specs() -> Vec<(String, String)> {
    let yaml = r#"
- name: restart all
  help: restarts everything
  pattern: '^restart all$'
  action: whoami
  allow: [everyone]
- name: me
  help: who am I
  pattern: '^me$'
  action: whoami
  answer: private
  allow: [everyone]
- name: note
  help: a note with five names and a text
  pattern: '^note (?P<a>\S+) (?P<b>\S+) (?P<c>\S+) (?P<d>\S+) (?P<e>\S+)(?: (?P<f>.+))?$'
  args:
    a: { type: name }
    b: { type: name }
    c: { type: name }
    d: { type: name }
    e: { type: name }
    f: { type: text, optional: true }
  action: whoami
  allow: [everyone]
"#;
    vec![("commands/small.yaml".into(), yaml.to_owned())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_without_arguments_asks_first_unless_it_is_read_only() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, Some(small_specs())).await;
        let list = rig.command("alice", &["build"], &[]).await.1;
        let select = select_for(&list, "restart all");
        let asked = rig.pick("alice", &select, "restart all").await;
        assert_eq!(asked["type"], 7, "the list becomes the question: {asked:#}");
        assert!(is_ephemeral(&json!({ "type": 4, "data": asked["data"] })), "{asked:#}");
        assert_eq!(asked["data"]["content"], "Run `/deckhand restart all`?");
        let choices = buttons(&asked);
        let labels: Vec<&str> = choices.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["Run", "Cancel"]);
        assert!(rig.requests().await.is_empty(), "nothing runs on the pick");

        // Cancel: nothing runs; bob cannot click alice's Run; alice's Run runs it once.
        let cancelled = rig.click("alice", &choices[1].1).await;
        assert_eq!(cancelled["type"], 7, "{cancelled:#}");
        assert!(buttons(&cancelled).is_empty(), "no buttons left: {cancelled:#}");
        let bobs = rig.click("bob", &choices[0].1).await;
        assert!(
            bobs["data"]["content"]
                .as_str()
                .unwrap_or_default()
                .contains("nothing was done"),
            "{bobs:#}"
        );
        assert!(rig.requests().await.is_empty(), "neither Cancel nor bob ran it");
        let run = rig.click("alice", &choices[0].1).await;
        assert_eq!(run["type"], 5, "deferred like a typed command: {run:#}");
        let requests = rig.requests().await;
        assert_eq!(requests.len(), 1, "{requests:#?}");
        assert_eq!(requests[0]["text"], "restart all");

        // A read-only one runs when picked, privately.
        let me = rig.pick("alice", &select_for(&list, "me"), "me").await;
        assert_eq!(me["type"], 5, "{me:#}");
        assert_eq!(me["data"]["flags"], 64, "private: {me:#}");
        assert_eq!(rig.requests().await.len(), 2);
        rig.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_arguments_keep_equals_signs_and_quoted_text() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let rig = start(backend, Some(small_specs())).await;
        let list = rig.command("alice", &["build"], &[]).await.1;
        let modal = rig.pick("alice", &select_for(&list, "note"), "note").await;
        let form = modal["data"]["custom_id"].as_str().expect("form").to_owned();
        let names = [("a", "n1"), ("b", "n2"), ("c", "n3"), ("d", "n4")];
        let fill = |more: &'static str| {
            let mut v = names.to_vec();
            v.push(("+more", more));
            v
        };
        let (_, v) = rig.submit("alice", &form, &fill("e=n5\nf=x=1=2 and y=3")).await;
        assert_eq!(v["type"], 5, "{v:#}");
        let (_, v) = rig
            .submit("alice", &form, &fill("f=\"  quoted\nlines=ok \\\"q\\\"\"\ne=n5"))
            .await;
        assert_eq!(v["type"], 5, "{v:#}");
        let (_, bad) = rig.submit("alice", &form, &fill("e=n5\nf=\"unclosed")).await;
        let said = bad["data"]["content"].as_str().unwrap_or_default();
        assert!(said.contains("closing"), "{said}");
        let mut texts: Vec<String> = rig
            .requests()
            .await
            .iter()
            .filter_map(|r| r["text"].as_str().map(str::to_owned))
            .collect();
        texts.sort();
        assert_eq!(
            texts,
            [
                // Spaces and line breaks collapse as in typed text.
                "note n1 n2 n3 n4 n5 quoted lines=ok \"q\"",
                "note n1 n2 n3 n4 n5 x=1=2 and y=3"
            ]
        );
        rig.app.shutdown().await;
    }
}
