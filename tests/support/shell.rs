//! A bash driven line by line, as a person types into a terminal, and the processes a test
//! starts for it (tests/playground.rs runs the README's walkthrough with it). Each process is
//! started in its own process group and ended by that group's id.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// One bash, fed one line at a time; stdout and stderr together, with the exit code.
pub struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

const DONE: &str = "__walkthrough_line_done__";

impl Shell {
    pub fn start(dir: &Path, path: &str, deckhand_url: &str) -> Shell {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", dir)
            .env("DECKHAND_URL", deckhand_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("bash starts");
        let mut stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        writeln!(stdin, "exec 2>&1").expect("bash reads");
        Shell { child, stdin, lines }
    }

    /// Runs `line` as typed; returns (exit code, output).
    pub fn run(&mut self, line: &str, timeout: Duration) -> (i32, String) {
        writeln!(self.stdin, "{line}\nprintf '\\n{DONE} %d\\n' $?").expect("bash reads");
        self.stdin.flush().expect("bash reads");
        let deadline = Instant::now() + timeout;
        let mut out: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => match l.strip_prefix(DONE) {
                    Some(code) => {
                        // The newline printf added before the marker.
                        if out.last().is_some_and(String::is_empty) {
                            out.pop();
                        }
                        return (code.trim().parse().expect("an exit code"), out.join("\n"));
                    }
                    None => out.push(l),
                },
                Err(_) => panic!(
                    "`{line}` did not finish within {timeout:?}; output so far:\n{}",
                    out.join("\n")
                ),
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        kill_group(&self.child);
    }
}

/// Ends a process this test started, and whatever it started, by its group id.
fn kill_group(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status();
}

pub struct Serve(pub Child);

impl Drop for Serve {
    fn drop(&mut self) {
        kill_group(&self.0);
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether `GET /readyz` answers 200.
pub fn ready(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}
