//! The slack bench's closed-loop figures from wrk (issue 14 asks for them): wrk sends
//! pre-signed slash commands from a file (`signed.lua`), each with its own trigger_id and a
//! signature made just before the run (Slack's window is 5 minutes), so wrk needs no HMAC.
//! Skipped, with a note, when wrk is not installed (`apt-get install wrk`).

use std::{io::Write, process::Command};

use super::slack_fake::{command_form, now, signed_headers};

/// What one wrk run printed.
pub struct Wrk {
    pub rate: f64,
    pub p50: String,
    pub p99: String,
    /// Non-2xx answers plus socket errors.
    pub errors: u64,
    /// Times a thread ran out of pre-signed commands and repeated them.
    pub wraps: u64,
}

pub fn available() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

/// `per_sec * secs` signed commands (trigger_ids `wrk.{tag}.{i}`) in a temporary file.
fn write_requests(tag: &str, response_url: &str, count: usize) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    let mut out = std::io::BufWriter::new(file.as_file_mut());
    let ts = now();
    for i in 0..count {
        let body = command_form(
            "UBENCH",
            "CBENCH",
            &format!("bench env-{}", i % 1000),
            &format!("wrk.{tag}.{i}"),
            response_url,
        );
        let headers = signed_headers(&body, ts);
        writeln!(out, "{}\t{}\t{body}", headers[0].1, headers[1].1).expect("write");
    }
    out.flush().expect("flush");
    drop(out);
    file
}

/// wrk with `threads` threads and `conns` connections for `secs` against `url`.
pub fn run(url: &str, response_url: &str, tag: &str, threads: usize, conns: usize, secs: u64) -> Wrk {
    let count = (secs as usize * 30_000).max(10_000);
    let file = write_requests(tag, response_url, count);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/slack/signed.lua");
    let out = Command::new("wrk")
        .args(["--latency", "-t", &threads.to_string(), "-c", &conns.to_string()])
        .args(["-d", &format!("{secs}s"), "-s", script, url])
        .env("SLACK_WRK_REQUESTS", file.path())
        .env("SLACK_WRK_THREADS", threads.to_string())
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&text)
}

fn parse(text: &str) -> Wrk {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l[prefix.len()..].split_whitespace().next())
            .unwrap_or("?")
            .to_owned()
    };
    let number = |s: String| s.parse::<f64>().unwrap_or(0.0);
    let socket_errors: u64 = text
        .lines()
        .find(|l| l.contains("Socket errors"))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|d| d.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Wrk {
        rate: number(field("Requests/sec:")),
        p50: field("50%"),
        p99: field("99%"),
        errors: number(field("Non-2xx or 3xx responses:")) as u64 + socket_errors,
        wraps: number(field("wraps:")) as u64,
    }
}
