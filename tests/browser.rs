//! The shell link's terminal page in headless Chromium, driven through chromedriver's
//! WebDriver HTTP API: open the link, type into xterm.js, see the pod's answer on the page.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y --no-install-recommends
//! chromium chromium-driver`; `.ci/run` installs them). Without them the test fails saying so,
//! unless DECKHAND_BROWSER_TESTS=off.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cluster::{output_data, state};
use deckhand::shell::Sessions;
use serde_json::{Value, json};
use support::backends;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's code for the Enter key.
const ENTER: &str = "\u{E007}";

fn find(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(chromedriver: &str, chromium: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            session: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = driver.http.get(format!("{}/status", driver.url)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,700"]
            }
        }}});
        let v = driver.call("POST", "/session", caps).await;
        driver.session = Some(v["sessionId"].as_str().expect("a WebDriver session").to_owned());
        driver
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = match &self.session {
            Some(s) => format!("{}/session/{s}{path}", self.url),
            None => format!("{}{path}", self.url),
        };
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let r = req.send().await.expect("chromedriver answers");
        let status = r.status();
        let v: Value = r.json().await.expect("WebDriver JSON");
        assert!(status.is_success(), "WebDriver {method} {path}: {status} {v:#}");
        v["value"].clone()
    }

    async fn script(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// What the terminal shows, row by row as text.
    async fn screen(&self) -> String {
        self.script("const r = document.querySelector('.xterm-rows'); return r ? r.innerText : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .replace('\u{a0}', " ")
    }

    async fn status(&self) -> (String, String) {
        let v = self
            .script("const s = document.getElementById('status'); return [s.dataset.state, s.textContent];")
            .await;
        (
            v[0].as_str().unwrap_or_default().to_owned(),
            v[1].as_str().unwrap_or_default().to_owned(),
        )
    }

    async fn wait_until(&self, what: &str, mut done: impl AsyncFnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self).await {
            assert!(
                Instant::now() < deadline,
                "{what} never happened; the terminal shows:\n{}\nstatus: {:?}",
                self.screen().await,
                self.status().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into xterm.js's helper textarea, where the terminal takes its keyboard input.
    async fn type_text(&self, text: &str) {
        let el = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": ".xterm-helper-textarea"}),
            )
            .await;
        let id = el[ELEMENT].as_str().expect("the terminal's textarea").to_owned();
        self.call("POST", &format!("/element/{id}/value"), json!({"text": text}))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shell_page_runs_a_command_typed_in_the_browser() {
    let (Some(chromium), Some(chromedriver)) = (find("chromium"), find("chromedriver")) else {
        if std::env::var("DECKHAND_BROWSER_TESTS").is_ok_and(|v| v == "off") {
            eprintln!("skipped: chromium or chromedriver not installed and DECKHAND_BROWSER_TESTS=off");
            return;
        }
        panic!(
            "the browser test needs Debian's chromium and chromium-driver: \
             `apt-get install -y --no-install-recommends chromium chromium-driver` \
             (or set DECKHAND_BROWSER_TESTS=off to skip it)"
        );
    };
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = cluster::start_on(backend, |_| {}).await;
        for text in [
            "env create web",
            "deploy ghcr.io/acme/shop:1.0 to web",
            "shell shop in web",
        ] {
            let v = env.run("alice", text).await;
            assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
        }
        let (_, v) = env.app.get_as("alice", "/api/v1/requests?scope=mine").await;
        let id = v["requests"][0]["id"].as_str().expect("the shell request").to_owned();
        let (_, done) = env.app.get_as("alice", &format!("/api/v1/requests/{id}")).await;
        let link = output_data(&done)["shell"]["url"]
            .as_str()
            .expect("a shell link")
            .to_owned();
        // The link names public_url; the test server listens elsewhere.
        let page = format!("{}{}", env.app.url, &link[link.find("/shell/").unwrap()..]);

        let driver = Driver::start(&chromedriver, &chromium).await;
        driver.call("POST", "/url", json!({"url": page})).await;
        driver
            .wait_until("the terminal connecting and showing the prompt", async |d| {
                d.status().await.0 == "connected" && d.screen().await.contains("$ ")
            })
            .await;

        driver.type_text(&format!("echo hello from chromium{ENTER}")).await;
        driver
            .wait_until("the command's output on the page", async |d| {
                let screen = d.screen().await;
                screen.lines().any(|l| l.trim_end() == "hello from chromium")
            })
            .await;
        // The page told the pod its size (the fit addon sized the terminal to the window).
        driver.type_text(&format!("stty size{ENTER}")).await;
        driver
            .wait_until("stty size showing the page's terminal size", async |d| {
                let sizes = d
                    .script("return [window.innerWidth, document.querySelector('.xterm-rows').children.length];")
                    .await;
                let rows = sizes[1].as_u64().unwrap_or(0);
                d.screen().await.lines().any(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    words.len() == 2 && words[0] == rows.to_string() && words[1] != "80"
                })
            })
            .await;

        driver.type_text(&format!("exit 5{ENTER}")).await;
        driver
            .wait_until("the page saying the shell exited", async |d| {
                d.status().await == ("exited".into(), "the shell exited with 5".into())
            })
            .await;
        driver.call("DELETE", "", json!({})).await;

        let rows = Sessions::new(env.app.app().store.pool().clone())
            .of_request(&id)
            .await
            .expect("sessions");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].client.as_deref(), Some("browser"));
        assert_eq!(rows[0].exit_code, Some(5));
        assert!(rows[0].ended_at.is_some(), "{rows:?}");
        env.app.shutdown().await;
    }
}
