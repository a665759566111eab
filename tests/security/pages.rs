//! Security tests: request pages (issue 15). A page link (`/r/{token}`) is personal: it
//! shows a request as its viewer's audience admits (someone else's proxy link never
//! appears), escapes everything it shows, carries headers that keep the token out of caches
//! and Referers and forbid scripts, and answers 404 for an unknown or expired token. Chat
//! hands the link out privately only: the `request <id>` answer carries it as an "Open
//! page" button in a Slack ephemeral answer or a Discord ephemeral response, never in the
//! channel.
//!
//! Runs deckhand against the Kubernetes test API server (and the Slack or Discord fake), on
//! SQLite and PostgreSQL.

use serde_json::{Value, json};

use crate::{
    chat_markup::{CHANNEL, discord_command, slack_command_with, slack_public_text, with_discord, with_slack},
    cluster::{Env, output_data, state},
    discord_fake,
    slack_fake::Call,
    support::{backends, discord_id, slack_id},
};

/// The id of a request view.
fn id_of(v: &Value) -> String {
    v["request"]["id"].as_str().expect("request id").to_owned()
}

/// The page address the `request` answer in `v` carries.
fn page_in(v: &Value) -> String {
    v["events"]
        .as_array()
        .and_then(|es| es.iter().find_map(|e| e["data"]["page"].as_str()))
        .unwrap_or_else(|| panic!("no page link in {v:#}"))
        .to_owned()
}

/// `url` on the test server (links are built on `server.public_url`).
fn local(env: &Env, url: &str) -> String {
    let at = url.find("/r/").unwrap_or_else(|| panic!("not a page link: {url}"));
    format!("{}{}", env.app.url, &url[at..])
}

/// `user` asks `request <id>` through the API; the address of their page.
async fn page_for(env: &Env, user: &str, id: &str) -> String {
    let v = env.run(user, &format!("request {id}")).await;
    assert_eq!(state(&v), "succeeded", "{v:#}");
    local(env, &page_in(&v))
}

async fn get(env: &Env, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = env.app.http.get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_shows_the_request_escaped_with_no_store_and_no_scripts() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, _slack) = with_slack(backend, true).await;
        let v = env
            .run("alice", "exec shop in shop -- echo '<script>alert(1)</script>'")
            .await;
        assert_eq!(state(&v), "succeeded", "{v:#}");
        let id = id_of(&v);
        let (status, headers, body) = get(&env, &page_for(&env, "alice", &id).await).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("<script"), "nothing unescaped: {body}");
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{body}");
        for shown in [id.as_str(), "exec", "alice", "succeeded"] {
            assert!(body.contains(shown), "{shown} on the page: {body}");
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), "text/html; charset=utf-8");
        assert_eq!(header("cache-control"), "no-store");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("x-content-type-options"), "nosniff");
        let csp = header("content-security-policy");
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src") && !csp.contains("unsafe-inline"), "{csp}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn someone_elses_page_never_shows_a_private_proxy_link() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, _slack) = with_slack(backend, true).await;
        let v = env.run("alice", "proxy open shop in shop").await;
        assert_eq!(state(&v), "succeeded", "{v:#}");
        let proxy = id_of(&v);
        let url = output_data(&v)["url"].as_str().expect("the link").to_owned();
        let token = url
            .split("/p/")
            .nth(1)
            .map(|t| t.trim_end_matches('/'))
            .expect("a /p/ link");

        // alice's own page shows her link; bob's page of the same request does not.
        let (status, _, mine) = get(&env, &page_for(&env, "alice", &proxy).await).await;
        assert_eq!(status, 200);
        assert!(mine.contains(token), "the requester reads her link: {mine}");
        let (status, _, bobs) = get(&env, &page_for(&env, "bob", &proxy).await).await;
        assert_eq!(status, 200);
        assert!(!bobs.contains(token), "bob's page carries alice's proxy token: {bobs}");
        assert!(bobs.contains("private: only alice"), "{bobs}");

        // alice's own `request` answer quotes her link; bob reading that answer (API and
        // page) does not get it either.
        let asked = env.run("alice", &format!("request {proxy}")).await;
        let answer = id_of(&asked);
        let (_, through_api) = env.app.get_as("bob", &format!("/api/v1/requests/{answer}")).await;
        assert!(!through_api.to_string().contains(token), "{through_api:#}");
        assert!(
            !through_api.to_string().contains("/r/"),
            "alice's page link is hers: {through_api:#}"
        );
        let (_, _, bobs) = get(&env, &page_for(&env, "bob", &answer).await).await;
        assert!(!bobs.contains(token), "{bobs}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_expired_and_odd_tokens_answer_404_with_the_way_back() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, _slack) = with_slack(backend, false).await;
        let v = env.run("alice", "whoami").await;
        let id = id_of(&v);
        let base = &env.app.url;
        let long = "a".repeat(5000);
        for path in [
            "/r/abcdefghjkmnpqrstvwxyz0123".to_owned(),
            "/r/%00%ff%2e%2e".to_owned(),
            "/r/%E2%98%83".to_owned(),
            format!("/r/{long}"),
            format!("/r/{long}/files/a-x"),
            "/r/abcdefghjkmnpqrstvwxyz0123/files/a-x".to_owned(),
        ] {
            let (status, headers, body) = get(&env, &format!("{base}{path}")).await;
            assert_eq!(status, 404, "{path}: {body}");
            assert!(
                body.contains("expired") && body.contains("/deckhand request"),
                "{path}: {body}"
            );
            assert_eq!(headers["cache-control"], "no-store");
        }
        // A link minted already expired, and one for someone the configuration no longer
        // knows: both 404, the first naming its request.
        let links = deckhand::pages::PageLinks::new(env.app.app().store.pool().clone());
        let (dead, _) = links.mint(&id, "alice", 0).await.unwrap();
        let (status, _, body) = get(&env, &format!("{base}/r/{dead}")).await;
        assert_eq!(status, 404);
        assert!(body.contains(&format!("/deckhand request {id}")), "{body}");
        let (gone, _) = links.mint(&id, "mallory", 3_600_000).await.unwrap();
        assert_eq!(get(&env, &format!("{base}/r/{gone}")).await.0, 404);
        // A live link: no file of another name.
        let live = page_for(&env, "alice", &id).await;
        assert_eq!(get(&env, &live).await.0, 200);
        assert_eq!(get(&env, &format!("{live}/files/a-nope")).await.0, 404);
        // Only the digest is stored.
        let pool = env.app.app().store.pool().clone();
        let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM page_links")
            .fetch_all(&pool)
            .await
            .unwrap();
        let token = live.rsplit('/').next().unwrap();
        assert!(stored.iter().all(|h| h.len() == 64 && h != token), "{stored:?}");
        env.app.shutdown().await;
    }
}

/// Whether `c` carries an "Open page" link button to a page.
fn slack_page_button(c: &Call) -> bool {
    let blocks = c.body["blocks"].to_string();
    blocks.contains("Open page") && blocks.contains("/r/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_request_answers_with_the_page_button_privately() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, slack) = with_slack(backend, false).await;
        let id = id_of(&env.run("alice", "whoami").await);
        slack_command_with(&env, &slack, "alice", &format!("request {id}"), "t-req").await;
        let calls = slack
            .wait_for(10, "the answer with its button on the response_url", |cs| {
                cs.iter().any(|c| c.method == "response_url" && slack_page_button(c))
            })
            .await;
        let answer = calls
            .iter()
            .find(|c| c.method == "response_url" && slack_page_button(c))
            .unwrap();
        assert_eq!(answer.body["response_type"], "ephemeral", "{:?}", answer.body);
        assert_eq!(answer.path, "t-req");

        // Shared: the text goes to the channel, the personal link to alice alone.
        slack_command_with(&env, &slack, "alice", &format!("request {id} --share"), "t-share").await;
        slack
            .wait_for(10, "the link, ephemeral to alice", |cs| {
                cs.iter()
                    .any(|c| c.method == "chat.postEphemeral" && c.ts.is_some() && slack_page_button(c))
            })
            .await;
        for c in slack.calls_to("chat.postEphemeral") {
            if c.body.to_string().contains("/r/") {
                assert_eq!(c.body["user"], slack_id("alice"), "{:?}", c.body);
                assert_eq!(c.body["channel"], CHANNEL);
            }
        }
        for text in slack_public_text(&slack) {
            assert!(!text.contains("/r/"), "a page link in the channel: {text}");
        }
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discord_request_answers_with_the_page_button_privately() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, discord, signer) = with_discord(backend, false).await;
        let id = id_of(&env.run("alice", "whoami").await);
        discord_command(&env, &discord, &signer, "alice", &["request"], &[("id", json!(id))]).await;
        let alice = discord_id("alice");
        let with_button = |m: &discord_fake::Message| {
            let c = m.components.to_string();
            c.contains("Open page") && c.contains("/r/")
        };
        discord
            .fake
            .wait_until("the answer with its page button, to alice alone", |f| {
                f.private_to(&alice).iter().any(with_button)
            })
            .await;
        for m in discord.fake.public() {
            assert!(
                !m.content.contains("/r/") && !m.components.to_string().contains("/r/"),
                "a page link in the channel: {m:#?}"
            );
        }
        env.app.shutdown().await;
    }
}
