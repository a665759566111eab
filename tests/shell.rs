//! Interactive shells: `deckhand shell` driven through a pseudo-terminal against the test API
//! server's scripted tty shell, prod shells behind approval (from a pipe, recorded), and the
//! links that must not open.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::{
    fs::File,
    io::{Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use cluster::{Env, output_data, state};
use deckhand::shell::Sessions;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use support::{Backend, backends, token};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// deckhand against a fresh test server, with `shop` deployed and ready in `ex` (dev).
async fn start_with(backend: Backend, edit: impl FnOnce(&mut deckhand::configuration::Config)) -> Env {
    let env = cluster::start_on(backend, edit).await;
    for text in ["env create ex", "deploy ghcr.io/acme/shop:1.0 to ex"] {
        let v = env.run("alice", text).await;
        assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
    }
    env
}

fn sessions(env: &Env) -> Sessions {
    Sessions::new(env.app.app().store.pool().clone())
}

/// The newest request of `user` with this text.
async fn request_id(env: &Env, user: &str, text: &str) -> String {
    let (status, v) = env.app.get_as(user, "/api/v1/requests?scope=mine").await;
    assert_eq!(status, 200, "{v}");
    v["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["text"] == text)
        .and_then(|r| r["id"].as_str())
        .unwrap_or_else(|| panic!("a request `{text}` of {user}: {v:#}"))
        .to_owned()
}

fn deckhand_cli(env: &Env, user: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deckhand"));
    cmd.args(args)
        .env("DECKHAND_URL", &env.app.url)
        .env("DECKHAND_TOKEN", token(user))
        .env_remove("DECKHAND_CONFIG");
    cmd
}

fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the CLI") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the CLI did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pseudo-terminal: the CLI gets the slave side as its stdin, stdout and stderr; the test
/// types into the master and reads what the terminal shows.
struct Pty {
    master: File,
    slave: OwnedFd,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn open(rows: u16, cols: u16) -> Self {
        let (mut master, mut slave) = (-1, -1);
        let size = winsize(rows, cols);
        // SAFETY: openpty fills two fds; the name buffer may be null.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened and are ours alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().expect("dup master"), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self { master, slave, seen }
    }

    fn stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().expect("dup slave"))
    }

    fn spawn(&self, mut cmd: Command) -> Child {
        cmd.stdin(self.stdio())
            .stdout(self.stdio())
            .stderr(self.stdio())
            .spawn()
            .expect("start deckhand")
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).expect("type");
    }

    fn text_since(&self, from: usize) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()[from..]).into_owned()
    }

    /// Waits until `needle` shows after byte `from`; returns the offset just past it.
    async fn expect(&self, from: usize, needle: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text_since(from);
            if let Some(i) = text.find(needle) {
                return from + i + needle.len();
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared on the terminal; it shows:\n{text:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        let size = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads one winsize.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    fn termios(&self) -> libc::termios {
        // SAFETY: termios is plain data filled by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::tcgetattr(self.slave.as_raw_fd(), &mut t) }, 0);
        t
    }
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_shell_runs_commands_resizes_passes_ctrl_c_and_exits_with_the_shell_code() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_with(backend, |_| {}).await;
        let mut pty = Pty::open(24, 80);
        let cooked = pty.termios();
        let mut child = pty.spawn(deckhand_cli(&env, "alice", &["shell", "shop", "--env", "ex"]));

        let at = pty.expect(0, "$ ").await;
        // Raw mode: the local terminal neither echoes nor edits lines; the pod's terminal does.
        let raw = pty.termios();
        assert_eq!(
            raw.c_lflag & (libc::ECHO | libc::ICANON | libc::ISIG),
            0,
            "the CLI put the terminal in raw mode"
        );

        pty.type_keys("echo hello\r");
        let at = pty.expect(at, "echo hello\r\nhello\r\n$ ").await;

        pty.type_keys("hostname\r");
        let after = pty.expect(at, "\r\n$ ").await;
        let pod = pty.text_since(at).lines().nth(1).unwrap_or_default().trim().to_owned();
        assert!(pod.starts_with("shop-"), "hostname printed the pod: {pod:?}");
        let at = after;

        // The size the terminal had when the session started reached the pod...
        pty.type_keys("stty size\r");
        let at = pty.expect(at, "stty size\r\n24 80\r\n$ ").await;
        // ... and so does a resize, signalled with SIGWINCH as a terminal emulator does.
        pty.resize(50, 132);
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGWINCH) }, 0);
        let mut at = at;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            pty.type_keys("stty size\r");
            let next = pty.expect(at, "\r\n$ ").await;
            let said = pty.text_since(at);
            at = next;
            if said.contains("50 132") {
                break;
            }
            assert!(Instant::now() < deadline, "the resize never reached the pod: {said:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Ctrl-C goes to the pod as a byte and interrupts what runs there, not the CLI.
        pty.type_keys("sleep 30\r");
        let at = pty.expect(at, "sleep 30\r\n").await;
        // The pod's shell echoes a line once it has read it and starts `sleep` before it reads
        // anything more (tests/support/kube/exec.rs), so the Ctrl-C typed after the echo
        // reaches the running `sleep`; the prompt coming back long before 30 s shows it
        // interrupted it.
        pty.type_keys("\x03");
        let at = pty.expect(at, "^C\r\n$ ").await;
        assert!(child.try_wait().unwrap().is_none(), "Ctrl-C did not stop the CLI");

        pty.type_keys("exit 3\r");
        pty.expect(at, "exit 3").await;
        let status = wait_exit(&mut child, Duration::from_secs(15));
        assert_eq!(status.code(), Some(3), "the CLI exits with the shell's code");
        let restored = pty.termios();
        assert_eq!(
            restored.c_lflag & (libc::ECHO | libc::ICANON | libc::ISIG),
            cooked.c_lflag & (libc::ECHO | libc::ICANON | libc::ISIG),
            "the terminal is back in its own mode"
        );

        // The session is on record: who, which pod, when it started and ended, how.
        let id = request_id(&env, "alice", "shell shop in ex").await;
        let rows = sessions(&env).of_request(&id).await.expect("sessions");
        assert_eq!(rows.len(), 1, "{rows:?}");
        let s = &rows[0];
        assert_eq!(
            (s.requester.as_str(), s.pod.as_str(), s.client.as_deref()),
            ("alice", pod.as_str(), Some("cli"))
        );
        assert_eq!(s.exit_code, Some(3));
        let (started, ended) = (s.started_at.expect("started"), s.ended_at.expect("ended"));
        assert!(s.created_at <= started && started <= ended, "{s:?}");
        assert!(s.input_lines.is_empty(), "dev shells are not recorded: {s:?}");
        let audit = env
            .app
            .app()
            .store
            .audit(&deckhand::domain::RequestId::parse(&id).unwrap())
            .await
            .unwrap();
        let shell_rows: Vec<_> = audit.iter().filter(|a| a.action.starts_with("shell.")).collect();
        assert_eq!(shell_rows.len(), 2, "{audit:#?}");
        assert_eq!(
            (shell_rows[0].action.as_str(), shell_rows[0].actor.as_str()),
            ("shell.start", "alice")
        );
        assert!(
            shell_rows[0].detail.as_deref().unwrap_or_default().contains(&pod),
            "{shell_rows:?}"
        );
        assert_eq!(shell_rows[1].action, "shell.end");
        assert_eq!(shell_rows[1].at, ended);
        assert!(
            shell_rows[1]
                .detail
                .as_deref()
                .unwrap_or_default()
                .contains("exited with 3"),
            "{shell_rows:?}"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prod_shell_waits_for_ops_and_records_what_is_typed() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_with(backend, |_| {}).await;
        for text in ["env create payments prod", "deploy nginx:1.27.3 to payments"] {
            let pending = env.run("olga", text).await;
            assert_eq!(state(&pending), "pending_approval", "{text}: {pending:#}");
            let id = pending["request"]["id"].as_str().unwrap().to_owned();
            env.app.approve("omar", &id).await;
            let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
            assert_eq!(state(&done), "succeeded", "{text}: {done:#}");
        }
        // From a pipe, not a terminal: no raw mode, no resize; the end of input is Ctrl-D.
        let mut child = deckhand_cli(&env, "alice", &["shell", "nginx", "--env", "payments"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start deckhand");

        // The request waits for ops, and nobody is attached to anything meanwhile.
        let deadline = Instant::now() + Duration::from_secs(15);
        let id = loop {
            let (_, v) = env.app.get_as("alice", "/api/v1/requests?scope=mine").await;
            let found = v["requests"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["text"] == "shell nginx in payments" && r["state"] == "pending_approval")
                .and_then(|r| r["id"].as_str().map(str::to_owned));
            if let Some(id) = found {
                break id;
            }
            assert!(
                Instant::now() < deadline,
                "the shell request never waited for approval: {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // A link is made by the action, which runs only once approved: none while it waits.
        assert!(
            sessions(&env).of_request(&id).await.unwrap().is_empty(),
            "no link before approval"
        );
        assert!(child.try_wait().unwrap().is_none(), "the CLI waits for the approval");
        let (status, v) = env.app.approve("otto", &id).await;
        assert_eq!(status, 200, "{v}");

        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"echo from a pipe\nhostname\nexit 4\n").unwrap();
        drop(stdin);
        let status = wait_exit(&mut child, Duration::from_secs(20));
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(status.code(), Some(4), "stdout: {out}\nstderr: {err}");
        assert!(out.contains("\r\nfrom a pipe\r\n"), "{out:?}");
        assert!(
            err.contains("Waiting for approval by 1 of group:ops"),
            "the CLI said it waits for approval: {err}"
        );
        assert!(err.contains("recorded"), "the CLI warns that prod records: {err}");

        let rows = sessions(&env).of_request(&id).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let s = &rows[0];
        assert!(s.record, "prod records shells");
        assert!(out.contains(&format!("\r\n{}\r\n", s.pod)), "{out:?}");
        assert_eq!(s.input_lines, ["echo from a pipe", "hostname", "exit 4"]);
        assert_eq!(s.exit_code, Some(4));
        env.app.shutdown().await;
    }
}

/// Who opens a link's WebSocket: the CLI shows a deckhand token; a browser shows the cookie
/// the link's page set (if it loaded the page) and the page's Origin.
enum Client<'a> {
    Cli(&'a str),
    Browser(Option<&'a str>),
}

/// The handshake request a client sends for `path` (a link path ending in `/ws`).
fn ws_request(env: &Env, path: &str, client: Client) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!("{}{path}", env.app.url.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    match client {
        Client::Cli(user) => {
            h.insert("authorization", format!("Bearer {}", token(user)).parse().unwrap());
        }
        Client::Browser(cookie) => {
            h.insert("origin", env.app.url.parse().unwrap());
            if let Some(c) = cookie {
                h.insert("cookie", c.parse().unwrap());
            }
        }
    }
    req
}

/// Loads a link's page as a browser does; the cookie it was handed (`name=value`).
async fn load_page(env: &Env, path: &str) -> String {
    let r = reqwest::get(format!("{}{path}", env.app.url)).await.unwrap();
    assert_eq!(r.status(), 200, "the page opens");
    let set = r
        .headers()
        .get("set-cookie")
        .expect("the page binds the link")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// A browser that loaded the link's page opens its socket.
async fn open_in_browser(
    env: &Env,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let cookie = load_page(env, path).await;
    let req = ws_request(env, &format!("{path}/ws"), Client::Browser(Some(&cookie)));
    tokio_tungstenite::connect_async(req).await.expect("the link opens").0
}

/// Opens a session's WebSocket and types `exit 0`; the HTTP status and body of a refusal.
async fn connect(env: &Env, path: &str, client: Client<'_>) -> Result<(), (u16, String)> {
    match tokio_tungstenite::connect_async(ws_request(env, path, client)).await {
        Ok((mut ws, _)) => {
            let _ = ws.send(Message::binary(b"exit 0\r".to_vec())).await;
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    assert_eq!(t.as_str(), r#"{"type":"exit","code":0}"#);
                }
            }
            Ok(())
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err((
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("{e}"),
    }
}

fn link_path(done: &Value) -> String {
    let url = output_data(done)["shell"]["url"]
        .as_str()
        .expect("a shell link")
        .to_owned();
    url[url.find("/shell/").unwrap()..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_expired_used_and_foreign_links_are_refused() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_with(backend, |c| c.kubernetes.shell_link_ttl = "10m".parse().unwrap()).await;
        let http = reqwest::Client::new();
        let get = |path: String| {
            let http = http.clone();
            let url = format!("{}{path}", env.app.url);
            async move {
                let r = http.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };

        // No such app: said before any link exists.
        let nope = env.run("alice", "shell nope in ex").await;
        assert_eq!(state(&nope), "failed", "{nope:#}");
        assert!(cluster::outcome(&nope).contains("nope"), "{}", cluster::outcome(&nope));
        let id = nope["request"]["id"].as_str().unwrap();
        assert!(sessions(&env).of_request(id).await.unwrap().is_empty());

        // A guessed token.
        let (status, page) = get("/shell/abcdefghijklmnopqrstuvwxyz".into()).await;
        assert_eq!(status, 404);
        assert!(page.contains("This shell link does not exist"), "{page}");
        let (status, text) = connect(&env, "/shell/abcdefghijklmnopqrstuvwxyz/ws", Client::Browser(None))
            .await
            .unwrap_err();
        assert_eq!(status, 404, "{text}");

        // Another user's deckhand token cannot take alice's link; alice's link opens once.
        let done = env.run("alice", "shell shop in ex").await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        let path = link_path(&done);
        let (status, page) = get(path.clone()).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("/assets/shell/xterm.js") && page.contains("shop in ex"),
            "{page}"
        );
        let (status, text) = connect(&env, &format!("{path}/ws"), Client::Cli("bob"))
            .await
            .unwrap_err();
        assert_eq!(status, 403, "{text}");
        assert!(text.contains("belongs to alice's request"), "{text}");
        // Not a WebSocket handshake: told where to go instead.
        let (status, text) = get(format!("{path}/ws")).await;
        assert_eq!(status, 400);
        assert!(text.contains("Open the link without /ws"), "{text}");
        connect(&env, &format!("{path}/ws"), Client::Cli("alice"))
            .await
            .expect("alice opens her link");
        let (status, page) = get(path.clone()).await;
        assert_eq!(status, 410);
        assert!(page.contains("already opened its session"), "{page}");
        let (status, _) = connect(&env, &format!("{path}/ws"), Client::Browser(None))
            .await
            .unwrap_err();
        assert_eq!(status, 410);

        // A link nobody opened in time.
        let done = env.run("alice", "shell shop in ex").await;
        let path = link_path(&done);
        let id = done["request"]["id"].as_str().unwrap();
        let s = &sessions(&env).of_request(id).await.unwrap()[0];
        assert_eq!(s.expires_at - s.created_at, 10 * 60 * 1000, "kubernetes.shell_link_ttl");
        // Ten minutes pass.
        sqlx::query("UPDATE shell_sessions SET expires_at = created_at - 1 WHERE id = $1")
            .bind(&s.id)
            .execute(env.app.app().store.pool())
            .await
            .unwrap();
        let (status, page) = get(path.clone()).await;
        assert_eq!(status, 410);
        assert!(
            page.contains("expired before it was opened") && page.contains("`shell shop in ex`"),
            "{page}"
        );
        let (status, text) = connect(&env, &format!("{path}/ws"), Client::Browser(None))
            .await
            .unwrap_err();
        assert_eq!(status, 410, "{text}");
        let s = &sessions(&env).of_request(id).await.unwrap()[0];
        assert_eq!(
            (s.started_at, s.ended_at),
            (None, None),
            "an expired link starts nothing: {s:?}"
        );

        // The pod went away after the link was made: a clear 502, and the link is not spent.
        let done = env.run("alice", "shell shop in ex").await;
        let path = link_path(&done);
        let pod = output_data(&done)["shell"]["pod"].as_str().unwrap().to_owned();
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(env.kube.client(), "ex");
        pods.delete(&pod, &Default::default()).await.expect("delete the pod");
        let cookie = load_page(&env, &path).await;
        let (status, text) = connect(&env, &format!("{path}/ws"), Client::Browser(Some(&cookie)))
            .await
            .unwrap_err();
        assert_eq!(status, 502, "{text}");
        assert!(text.contains(&format!("could not open a shell in pod {pod}")), "{text}");
        let again = reqwest::Client::new()
            .get(format!("{}{path}", env.app.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 200, "the link can be tried again until it expires");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_starts_one_session_and_keeps_its_record_on_every_backend() {
    use deckhand::{
        domain::{RequestId, now_ms},
        shell::{Ending, LinkState, NewSession},
    };
    for backend in support::backends() {
        let db = support::TestDb::new(backend).await;
        let store = db.store(8).await;
        let sessions = Sessions::new(store.pool().clone());
        let request = RequestId::generate();
        let new = |hash: &str, ttl_ms: i64| NewSession {
            token_hash: hash.into(),
            request_id: request.to_string(),
            requester: "alice".into(),
            env: "ex".into(),
            app: "shop".into(),
            pod: "shop-1".into(),
            container: Some("shop".into()),
            command: vec!["sh".into()],
            record: true,
            ttl_ms,
        };
        let s = sessions.insert(&new("h1", 60_000)).await.expect("insert");
        assert_eq!(sessions.by_hash("h1").await.unwrap().as_ref(), Some(&s));
        assert_eq!(s.state_at(now_ms()), LinkState::Open);

        // Five connections race for the link: one session.
        let claims = futures_util::future::join_all((0..5).map(|_| sessions.claim(&s, "browser"))).await;
        let won = claims.into_iter().map(|c| c.expect("claim")).filter(|&c| c).count();
        assert_eq!(won, 1, "{backend:?}");
        let started = sessions.get(&s.id).await.unwrap().unwrap();
        assert_eq!(started.state_at(now_ms()), LinkState::Used);

        sessions
            .record_lines(&s.id, &["id".into(), "exit 3".into()])
            .await
            .unwrap();
        sessions.finish(&started, &Ending::Exited(3)).await.unwrap();
        // A second end (a retry) changes nothing and adds no audit row.
        sessions.finish(&started, &Ending::Disconnected).await.unwrap();
        let ended = sessions.get(&s.id).await.unwrap().unwrap();
        assert_eq!(
            (ended.exit_code, ended.end_reason.as_deref()),
            (Some(3), Some("exited with 3"))
        );
        assert_eq!(ended.input_lines, ["id", "exit 3"]);
        assert_eq!(ended.client.as_deref(), Some("browser"));

        // A pod that could not be reached gives the link back for another try.
        let t = sessions.insert(&new("h2", 60_000)).await.unwrap();
        assert!(sessions.claim(&t, "cli").await.unwrap());
        sessions.release(&t, "pod shop-1 is gone").await.unwrap();
        assert_eq!(
            sessions.get(&t.id).await.unwrap().unwrap().state_at(now_ms()),
            LinkState::Open
        );

        // An expired link starts nothing.
        let e = sessions.insert(&new("h3", -1)).await.unwrap();
        assert_eq!(e.state_at(now_ms()), LinkState::Expired);
        assert!(!sessions.claim(&e, "browser").await.unwrap());

        // Rows in the same millisecond have no order among them: compare as a set.
        let mut actions: Vec<String> = store
            .audit(&request)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        actions.sort();
        assert_eq!(
            actions,
            ["shell.attach_failed", "shell.end", "shell.start", "shell.start"],
            "{backend:?}"
        );
        assert_eq!(sessions.of_request(&request.to_string()).await.unwrap().len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shutdown_ends_live_sessions_on_record() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_with(backend, |_| {}).await;
        let done = env.run("alice", "shell shop in ex").await;
        let id = done["request"]["id"].as_str().unwrap().to_owned();
        let mut ws = open_in_browser(&env, &link_path(&done)).await;
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], b"$ "),
            other => panic!("expected the prompt, got {other:?}"),
        }
        let store_url = env.app.app().config.store.effective_url();
        let stopping = tokio::spawn(env.app.shutdown());
        let said = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => break t.to_string(),
                Some(Ok(_)) => {}
                other => panic!("the client was not told: {other:?}"),
            }
        };
        assert!(said.contains("deckhand is shutting down"), "{said}");
        stopping.await.unwrap();

        let store = deckhand::store::Store::connect(&store_url, 1).await.unwrap();
        let s = &Sessions::new(store.pool().clone()).of_request(&id).await.unwrap()[0];
        assert!(s.ended_at.is_some(), "{s:?}");
        assert_eq!(s.end_reason.as_deref(), Some("failed: deckhand shut down"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_nobody_types_into_ends() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_with(backend, |c| c.kubernetes.shell_idle_timeout = "1s".parse().unwrap()).await;
        let done = env.run("alice", "shell shop in ex").await;
        let id = done["request"]["id"].as_str().unwrap().to_owned();
        let mut ws = open_in_browser(&env, &link_path(&done)).await;
        let started = Instant::now();
        let said = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => break t.to_string(),
                    Some(Ok(_)) => {}
                    other => panic!("the client was not told: {other:?}"),
                }
            }
        })
        .await
        .expect("the idle session ends");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert!(said.contains("nothing was typed for 1s"), "{said}");
        let s = &sessions(&env).of_request(&id).await.unwrap()[0];
        assert_eq!(s.end_reason.as_deref(), Some("ended after 1s without input"), "{s:?}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shell_command_the_image_lacks_is_reported() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_with(backend, |c| c.kubernetes.shell_command = vec!["zsh".into()]).await;
        let done = env.run("alice", "shell shop in ex").await;
        let id = done["request"]["id"].as_str().unwrap().to_owned();
        let mut ws = open_in_browser(&env, &link_path(&done)).await;
        let said = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => break t.to_string(),
                Some(Ok(_)) => {}
                other => panic!("the client was not told: {other:?}"),
            }
        };
        assert!(
            said.starts_with(r#"{"type":"error""#) && said.contains(r#"exec: \"zsh\": executable file not found"#),
            "{said}"
        );
        let s = &sessions(&env).of_request(&id).await.unwrap()[0];
        let reason = s.end_reason.clone().unwrap_or_default();
        assert!(reason.starts_with("failed: OCI runtime exec failed"), "{s:?}");
        assert_eq!(s.exit_code, None);
        env.app.shutdown().await;
    }
}
