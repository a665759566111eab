//! One-off commands in a pod of an app, through kube's exec (a WebSocket with the
//! channel.k8s.io subprotocols). The command is split into words here and handed to the
//! container as a list, so no shell ever interprets what a user typed.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::{Api, api::AttachParams};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    #[error("the command has an unterminated {0} quote")]
    UnterminatedQuote(char),
    #[error("the command ends with a lone backslash")]
    TrailingBackslash,
    #[error("there is no command to run")]
    Empty,
}

/// Splits `line` into words the way a POSIX shell would before running it, and does nothing
/// else: `'...'` is literal, `"..."` keeps spaces and lets a backslash escape `"`, `\`, `$`
/// and a backquote, a backslash outside quotes escapes any character. Variables, globs,
/// pipes and the like are not expanded: they arrive in the argument as typed.
pub fn split_words(line: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has started: `''` is an (empty) argument, whitespace is not.
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                word.push(chars.next().ok_or(WordsError::TrailingBackslash)?);
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(WordsError::UnterminatedQuote('\'')),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(WordsError::UnterminatedQuote('"')),
                        },
                        Some(c) => word.push(c),
                        None => return Err(WordsError::UnterminatedQuote('"')),
                    }
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(WordsError::Empty);
    }
    Ok(words)
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{app} in {env} has no ready pod to run the command in ({pods})")]
    NoReadyPod { app: String, env: String, pods: String },
    #[error("timed out after {}s", .0.as_secs())]
    TimedOut(Duration),
    #[error("cancelled")]
    Cancelled,
    #[error("the exec stream from pod {pod} broke: {message}")]
    Stream { pod: String, message: String },
}

/// What one output stream said: the first `kept` bytes, and how many there were in all.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub total: usize,
}

impl Captured {
    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len()
    }
}

/// How the command ended, as the kubelet reported it on the status channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// It could not be run at all (no such executable, container gone): the kubelet's words.
    Failed(String),
}

/// How much output is kept per stream, and how long the command may take.
#[derive(Debug, Clone, Copy)]
pub struct ExecLimits {
    pub keep: usize,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub pod: String,
    pub stdout: Captured,
    pub stderr: Captured,
    pub exit: Exit,
}

/// Running, not being deleted, and Ready: a pod that can take a command now.
fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Reads `stream` to its end, keeping at most `keep` bytes. It must be drained to the end
/// even past the cap: kube's message loop blocks on a full pipe and the status never comes.
async fn capture(stream: Option<impl AsyncRead + Unpin>, keep: usize) -> std::io::Result<Captured> {
    let mut out = Captured::default();
    let Some(mut stream) = stream else {
        return Ok(out);
    };
    let mut buf = vec![0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        let room = keep.saturating_sub(out.bytes.len());
        out.bytes.extend_from_slice(&buf[..n.min(room)]);
        out.total += n;
    }
}

/// The exit code from the v1 Status on the error channel: `Success`, or `NonZeroExitCode`
/// with the code as the message of the `ExitCode` cause (as the kubelet sends it).
pub(crate) fn exit_of(status: &Status) -> Exit {
    if status.status.as_deref() == Some("Success") {
        return Exit::Code(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse::<i32>().ok());
    match code {
        Some(code) if status.reason.as_deref() == Some("NonZeroExitCode") => Exit::Code(code),
        _ => Exit::Failed(
            status
                .message
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the command could not be run".into()),
        ),
    }
}

impl Cluster {
    /// A ready pod of `app` in `ns` (the first by name, so repeated commands land on the
    /// same pod while it lives) and its first container.
    pub async fn ready_app_pod(&self, ns: &str, app: &str) -> Result<(String, Option<String>), ExecError> {
        // The Deployment first, so a wrong app name says so instead of "no ready pod".
        self.deployment(ns, app).await?;
        let mut pods = self.app_pods(ns, app).await?;
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        match pods.iter().find(|p| is_ready(p)) {
            Some(p) => {
                let container = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .map(|c| c.name.clone());
                Ok((p.metadata.name.clone().unwrap_or_default(), container))
            }
            None => {
                let pods = if pods.is_empty() {
                    "it has no pods".to_owned()
                } else {
                    let lines: Vec<String> = pods.iter().map(super::describe::pod_line).collect();
                    format!("pods: {}", lines.join("; "))
                };
                Err(ExecError::NoReadyPod {
                    app: app.to_owned(),
                    env: ns.to_owned(),
                    pods,
                })
            }
        }
    }

    /// Runs `argv` in `pod` and collects its output (each stream capped at `limits.keep`) and
    /// exit code. Not retried: a command may have run even when the connection broke.
    pub async fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        argv: &[String],
        limits: ExecLimits,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, ExecError> {
        let ExecLimits { keep, timeout } = limits;
        let client = self.client().await?;
        let mut ap = AttachParams::default()
            .stdin(false)
            .stdout(true)
            .stderr(true)
            .tty(false);
        if let Some(c) = container {
            ap = ap.container(c);
        }
        let api = Api::<Pod>::namespaced(client, ns);
        let broke = |message: String| ExecError::Stream {
            pod: pod.to_owned(),
            message,
        };
        let start = api.exec(pod, argv.to_vec(), &ap);
        let mut process = tokio::select! {
            r = tokio::time::timeout(timeout, start) => match r {
                Ok(p) => p.map_err(|e| ClusterError::from_kube(e, &format!("pod {pod} in {ns}")))?,
                Err(_) => return Err(ExecError::TimedOut(timeout)),
            },
            () = cancel.cancelled() => return Err(ExecError::Cancelled),
        };
        let stdout = process.stdout();
        let stderr = process.stderr();
        let status = process.take_status();
        let collect = async {
            let (out, err) = tokio::try_join!(capture(stdout, keep), capture(stderr, keep))?;
            let status = match status {
                Some(s) => s.await,
                None => None,
            };
            Ok::<_, std::io::Error>((out, err, status))
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, collect) => r,
            () = cancel.cancelled() => {
                process.abort();
                return Err(ExecError::Cancelled);
            }
        };
        let (stdout, stderr, status) = match outcome {
            Ok(r) => r.map_err(|e| broke(e.to_string()))?,
            Err(_) => {
                // Closing our side is all we can do; the process in the pod may run on.
                process.abort();
                return Err(ExecError::TimedOut(timeout));
            }
        };
        let exit = match status {
            Some(s) => exit_of(&s),
            // No status means the stream ended early; the loop's error says why.
            None => {
                let why = match process.join().await {
                    Ok(()) => "it closed without an exit status".to_owned(),
                    Err(e) => e.to_string(),
                };
                return Err(broke(why));
            }
        };
        Ok(ExecOutput {
            pod: pod.to_owned(),
            stdout,
            stderr,
            exit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_words(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn splits_like_a_shell_without_expanding() {
        assert_eq!(words("echo hello world"), ["echo", "hello", "world"]);
        assert_eq!(words(r#"echo "a b" c"#), ["echo", "a b", "c"]);
        assert_eq!(words("sh -c 'exit 3'"), ["sh", "-c", "exit 3"]);
        assert_eq!(words(r"echo a\ b \$HOME"), ["echo", "a b", "$HOME"]);
        assert_eq!(words(r#"echo "say \"hi\" \n""#), ["echo", r#"say "hi" \n"#]);
        assert_eq!(words("echo '' x"), ["echo", "", "x"]);
        assert_eq!(words("ls $HOME; rm *"), ["ls", "$HOME;", "rm", "*"]);
        assert_eq!(words("  a\t b  "), ["a", "b"]);
    }

    #[test]
    fn refuses_what_a_shell_would_refuse() {
        assert_eq!(split_words("echo 'a"), Err(WordsError::UnterminatedQuote('\'')));
        assert_eq!(split_words("echo \"a"), Err(WordsError::UnterminatedQuote('"')));
        assert_eq!(split_words("echo a\\"), Err(WordsError::TrailingBackslash));
        assert_eq!(split_words("   "), Err(WordsError::Empty));
    }

    #[test]
    fn reads_the_exit_code_the_kubelet_sends() {
        let s: Status = serde_json::from_value(serde_json::json!({"status": "Success"})).unwrap();
        assert_eq!(exit_of(&s), Exit::Code(0));
        let s: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        }))
        .unwrap();
        assert_eq!(exit_of(&s), Exit::Code(3));
        let s: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "reason": "InternalError", "message": "executable file not found"
        }))
        .unwrap();
        assert_eq!(exit_of(&s), Exit::Failed("executable file not found".into()));
    }
}
