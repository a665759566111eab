//! pod.exec: a one-off command in a ready pod of an app, its output posted in a code block
//! with the exit code. The request succeeds only when the command exits 0.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use serde_json::json;

use super::{Action, ActionContext, ActionError, ActionRegistry, env::env_facts};
use crate::{
    app::App,
    cluster::exec::{Captured, ExecError, ExecLimits, Exit, split_words},
    commands::Args,
    domain::Name,
    identity::Principal,
};

/// What the chat message shows of each stream; chat surfaces cut long messages anyway.
const POSTED_BYTES: usize = 16 * 1024;
/// What the output event's data keeps of each stream, for reading the whole through the API.
const KEPT_BYTES: usize = 256 * 1024;

pub fn register(registry: &mut ActionRegistry) {
    registry.register(Arc::new(Exec));
}

impl From<ExecError> for ActionError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Cancelled => ActionError::Cancelled,
            other => ActionError::Failed(other.to_string()),
        }
    }
}

fn env_arg(args: &Args) -> Result<Name, ActionError> {
    Ok(Args::require(args.name("env"), "env")?)
}

/// The words to run; an unbalanced quote is refused before anything is stored or approved.
fn argv(args: &Args) -> Result<Vec<String>, ActionError> {
    split_words(args.get("command").unwrap_or_default()).map_err(|e| ActionError::Failed(e.to_string()))
}

/// Text fit for a fenced code block: at most `POSTED_BYTES`, and no ``` that would end it.
fn fenced(c: &Captured) -> (String, bool) {
    let cut = c.bytes.len().min(POSTED_BYTES);
    let text = String::from_utf8_lossy(&c.bytes[..cut]).replace("```", "`\u{200b}``");
    (
        text.trim_end_matches('\n').to_owned(),
        c.truncated() || cut < c.bytes.len(),
    )
}

fn redacted(c: &Captured) -> Captured {
    Captured {
        bytes: crate::cluster::describe::redact(&String::from_utf8_lossy(&c.bytes)).into_bytes(),
        total: c.total,
    }
}

fn render(command: &str, pod: &str, exit: &str, stdout: &Captured, stderr: &Captured) -> String {
    let mut out = format!("`{command}` in pod {pod} {exit}\n");
    let (text, cut) = fenced(stdout);
    if !text.is_empty() || stderr.total == 0 {
        out.push_str(&format!("```\n{text}\n```\n"));
    }
    if cut {
        out.push_str(&format!(
            "[stdout truncated: {} of {} bytes shown]\n",
            POSTED_BYTES.min(stdout.bytes.len()),
            stdout.total
        ));
    }
    let (text, cut) = fenced(stderr);
    if !text.is_empty() {
        out.push_str(&format!("stderr:\n```\n{text}\n```\n"));
    }
    if cut {
        out.push_str(&format!(
            "[stderr truncated: {} of {} bytes shown]\n",
            POSTED_BYTES.min(stderr.bytes.len()),
            stderr.total
        ));
    }
    out.trim_end().to_owned()
}

struct Exec;

#[async_trait]
impl Action for Exec {
    fn name(&self) -> &'static str {
        "pod.exec"
    }
    /// Never: the command may have changed something before the crash.
    fn rerunnable(&self) -> bool {
        false
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    async fn facts(&self, app: &App, args: &Args, who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
        argv(args)?;
        env_facts(app, env_arg(args)?.as_str(), who).await
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let args = &ctx.request.args;
        let env = env_arg(args)?;
        let app = Args::require(args.name("app"), "app")?;
        let command = args.get("command").unwrap_or_default().to_owned();
        let argv = argv(args)?;
        let cluster = ctx.app.clusters.locate(env.as_str()).await?;
        let (pod, container) = cluster.ready_app_pod(env.as_str(), app.as_str()).await?;
        ctx.progress(format!("running `{command}` in pod {pod}")).await?;
        let limits = ExecLimits {
            keep: KEPT_BYTES,
            timeout: cluster.config().exec_timeout.as_duration(),
        };
        let out = cluster
            .exec(env.as_str(), &pod, container.as_deref(), &argv, limits, &ctx.cancel)
            .await?;
        let (exit_line, code) = match &out.exit {
            Exit::Code(code) => (format!("exited with {code}"), Some(*code)),
            Exit::Failed(why) => (format!("could not run: {why}"), None),
        };
        // What a command prints may hold credentials (`env`, `psql` with PGPASSWORD): it is
        // redacted, and read only by the requester and the request's approvers.
        let (stdout, stderr) = (redacted(&out.stdout), redacted(&out.stderr));
        let data = json!({
            "pod": out.pod,
            "argv": argv,
            "exit_code": code,
            "stdout": String::from_utf8_lossy(&stdout.bytes),
            "stderr": String::from_utf8_lossy(&stderr.bytes),
            "stdout_bytes": out.stdout.total,
            "stderr_bytes": out.stderr.total,
        });
        ctx.output(
            render(&command, &out.pod, &exit_line, &stdout, &stderr),
            crate::events::Output::fields(data).to(crate::visibility::Audience::Approvers),
        )
        .await?;
        match code {
            Some(0) => Ok(format!("exited with 0 in pod {}", out.pod)),
            _ => Err(ActionError::Failed(format!("{exit_line} in pod {}", out.pod))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(s: &str) -> Captured {
        Captured {
            bytes: s.as_bytes().to_vec(),
            total: s.len(),
        }
    }

    #[test]
    fn output_is_fenced_and_cannot_close_the_fence() {
        let text = render(
            "echo x",
            "shop-1",
            "exited with 0",
            &captured("a\n```\nb\n"),
            &captured(""),
        );
        assert_eq!(
            text,
            "`echo x` in pod shop-1 exited with 0\n```\na\n`\u{200b}``\nb\n```"
        );
        let text = render("false", "p", "exited with 1", &captured(""), &captured("no\n"));
        assert_eq!(text, "`false` in pod p exited with 1\nstderr:\n```\nno\n```");
    }

    #[test]
    fn long_output_says_it_was_cut() {
        let mut big = captured(&"x".repeat(POSTED_BYTES + 10));
        big.total += 100;
        let text = render("yes", "p", "exited with 0", &big, &captured(""));
        assert!(
            text.ends_with(&format!(
                "[stdout truncated: {POSTED_BYTES} of {} bytes shown]",
                POSTED_BYTES + 110
            )),
            "{}",
            &text[text.len() - 80..]
        );
    }
}
