//! What deckhand says in Slack: the root status line, thread replies and the approval
//! prompt (Block Kit, through slack-morphism's models).
//!
//! Everything a user or the cluster wrote (command text, outcomes, output, reasons, names)
//! goes through [`escape`] before it is put into mrkdwn: Slack reads `<!channel>`,
//! `<@U…>` and `<https://x|label>` in message text as a ping or a disguised link, so they
//! must arrive as `&lt;…&gt;`. Only deckhand's own markup (mentions it builds from Slack ids,
//! `*bold*`, code spans) is left as markup.

use slack_morphism::prelude::*;

use super::buttons::{self, Decision};
use crate::command_buttons::{self, CommandButton, LinkButton};
use crate::{
    chat::{Markup, Mentions, links},
    domain::{RequestId, State, human_duration_ms},
    signing::Signer,
    store::RequestRecord,
};

/// Slack cuts message text at 40,000 characters; stay well inside, in characters not bytes.
const MAX_TEXT: usize = 35_000;
/// A section block's text may hold 3,000 characters.
const MAX_SECTION: usize = 2_900;

pub fn mention(slack_user: Option<&str>, fallback: &str) -> String {
    match slack_user {
        Some(u) => format!("<@{}>", escape(u)),
        None => escape(fallback),
    }
}

/// `<@U…>: deploy … (request r-…)` and a status line under it; edited in place. While the
/// request runs, the status line says for how long (until `now`, Unix ms) and `progress`
/// (the latest progress line) follows it: progress edits this message instead of filling
/// the thread.
pub fn root_text(request: &RequestRecord, requester: &str, progress: Option<&str>, now: i64) -> String {
    let status = match request.state {
        State::PendingApproval => ":hourglass_flowing_sand: waiting for approval".to_owned(),
        State::Queued => ":inbox_tray: queued".to_owned(),
        State::Running => {
            let since = request
                .started_at
                .map(|t| format!(" for {}", human_duration_ms(now - t)))
                .unwrap_or_default();
            match progress {
                Some(p) => format!(":gear: running{since}\n{}", escape(&clip(p, 500))),
                None => format!(":gear: running{since}"),
            }
        }
        s => {
            let icon = match s {
                State::Succeeded => ":white_check_mark:",
                State::Failed => ":x:",
                State::Denied => ":no_entry:",
                _ => ":heavy_minus_sign:",
            };
            match request.outcome.as_deref().filter(|o| !o.is_empty()) {
                Some(o) => format!("{icon} {s}: {}", escape(&clip(o, 500))),
                None => format!("{icon} {s}"),
            }
        }
    };
    root_with(request, requester, &status)
}

fn root_with(request: &RequestRecord, requester: &str, status: &str) -> String {
    format!(
        "{requester}: {} (request {})\n{status}",
        escape(&request.text),
        request.id
    )
}

/// The root message of a success whose output is in the thread: "finished in 2s", the
/// output left to the reply (`chat::text::finished`).
pub fn root_finished(request: &RequestRecord, requester: &str, now: i64) -> String {
    let status = format!(":white_check_mark: {}", crate::chat::text::finished(request, now));
    root_with(request, requester, &status)
}

/// Escapes the three characters Slack treats as markup in message text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Slash-command text as the person typed it: Slack escapes `&`, `<` and `>` in it (so
/// `p99<300ms` arrives as `p99&lt;300ms`). `&amp;` goes last so `&amp;lt;` stays `&lt;`.
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push_str("\n… (cut)");
    out
}

/// Output (help, lists, logs) as a code block in the thread.
pub fn output_text(message: &str) -> String {
    if message.contains('\n') {
        // Slack decodes entities inside code blocks too, and reads `<!channel>` there.
        format!("```\n{}\n```", escape(&clip(&message.replace("```", "'''"), MAX_TEXT)))
    } else {
        clip(&escape(message), MAX_TEXT)
    }
}

/// How Slack writes what deckhand says on every platform (`crate::chat`): `<@U…>` for
/// people, `<!subteam^S…>` for a deckhand group mapped to a Slack user group.
pub struct SlackMarkup<'a>(pub &'a Mentions);

impl Markup for SlackMarkup<'_> {
    fn escape(&self, text: &str) -> String {
        escape(text)
    }

    fn user(&self, name: &str) -> String {
        mention(self.0.user_id(name), name)
    }

    fn group(&self, name: &str) -> Option<String> {
        self.0.group_id(name).map(|id| format!("<!subteam^{}>", escape(id)))
    }
}

/// The text of an approval prompt: who asks for what, where, then who may decide, which
/// rule asked and when it expires (`chat::text::prompt_lines`, already mrkdwn).
pub fn approval_summary(request: &RequestRecord, requester: &str, lines: &[String]) -> String {
    let target = request
        .args
        .get("env")
        .or_else(|| request.args.get("name"))
        .map(|e| format!(" in `{}`", escape(e)))
        .unwrap_or_default();
    clip(
        &format!(
            "*Approval needed* for {}: {requester} asks to run `{}` ({}{target}).\n{}",
            request.id,
            // A backtick in the text would end the code span and let the rest format.
            escape(&request.text.replace('`', "ˋ")),
            request.action,
            lines.join("\n"),
        ),
        MAX_SECTION,
    )
}

/// The prompt with Approve / Deny buttons; their values are signed by deckhand.
pub fn approval_blocks(signer: &Signer, id: &RequestId, summary: &str, progress: Option<&str>) -> Vec<SlackBlock> {
    let button = |decision: Decision, label: &str, style: SlackBlockButtonStyle| {
        SlackActionBlockElement::from(
            SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from(label))
                .with_action_id(SlackActionId::new(decision.as_str().into()))
                .with_value(buttons::value(signer, decision, id))
                .with_style(style),
        )
    };
    let mut blocks = vec![section(summary)];
    if let Some(p) = progress {
        blocks.push(context(p));
    }
    blocks.push(
        SlackActionsBlock::new(vec![
            button(Decision::Approve, "Approve", SlackBlockButtonStyle::Primary),
            button(Decision::Deny, "Deny", SlackBlockButtonStyle::Danger),
        ])
        .with_block_id(SlackBlockId::new("approval".into()))
        .into(),
    );
    blocks
}

/// Output with buttons under it: links to open (a button with `url`; Slack still sends the
/// click, which deckhand acknowledges and ignores), then command buttons (Close link...),
/// which run their command as the person who clicked.
pub fn output_blocks(signer: &Signer, body: &str, buttons: &[CommandButton], shown: &[&LinkButton]) -> Vec<SlackBlock> {
    let links = shown.iter().enumerate().filter_map(|(i, l)| link_button(i, l));
    let commands = buttons.iter().enumerate().map(|(i, b)| {
        let mut button =
            SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from(links::label(&b.label, BUTTON_TEXT_MAX)))
                // Unique within the block, as Slack requires; the prefix is what is matched.
                .with_action_id(SlackActionId::new(format!("{RUN_ACTION}{i}")))
                .with_value(command_buttons::sign(signer, "slack", &b.command));
        if b.danger {
            button = button.with_style(SlackBlockButtonStyle::Danger);
        }
        SlackActionBlockElement::from(button)
    });
    let mut blocks = Vec::new();
    if !body.trim().is_empty() {
        blocks.push(section(&clip(&output_text(body), MAX_SECTION)));
    }
    blocks.push(SlackActionsBlock::new(links.chain(commands).collect()).into());
    blocks
}

/// Slack's limits for a button: its text, its url.
const BUTTON_TEXT_MAX: usize = 75;
const URL_MAX: usize = 3000;
/// The action_id prefix of link buttons (clicks on them are acknowledged, nothing more).
pub const LINK_ACTION: &str = "link-";

/// A link as a button that opens it; `None` when Slack would refuse it as one.
fn link_button(i: usize, link: &LinkButton) -> Option<SlackActionBlockElement> {
    if link.url.chars().count() > URL_MAX {
        return None;
    }
    let url = reqwest::Url::parse(&link.url).ok()?;
    Some(
        SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from(links::label(
            &link.label,
            BUTTON_TEXT_MAX,
        )))
        .with_action_id(SlackActionId::new(format!("{LINK_ACTION}{i}")))
        .with_url(url)
        .into(),
    )
}

/// An output as a message: its text, with its links as real `<url|label>` links above it
/// (the text is what notifications and old clients show), and its links and command
/// buttons as blocks if it has any. A link shown as a button leaves the text's code block.
pub fn output_content(
    signer: &Signer,
    message: &str,
    buttons: &[CommandButton],
    links: &[LinkButton],
) -> SlackMessageContent {
    let shown: Vec<&LinkButton> = links.iter().filter(|l| link_button(0, l).is_some()).collect();
    let body = links::without(message, &shown);
    let mut lines: Vec<String> = shown
        .iter()
        .map(|l| format!("<{}|{}>", escape(&l.url), escape(&l.label.replace('|', "/"))))
        .collect();
    if !body.trim().is_empty() || shown.is_empty() {
        lines.push(output_text(&body));
    }
    let content = SlackMessageContent::new().with_text(lines.join("\n"));
    if buttons.is_empty() && shown.is_empty() {
        return content;
    }
    content.with_blocks(output_blocks(signer, &body, buttons, &shown))
}

/// The thread reply for a state event, if it deserves one: a request that ended other than
/// well (failed, denied, expired, cancelled), with why. Success is shown by the root message.
pub fn state_reply(request: &RequestRecord, data: &crate::events::EventData) -> Option<String> {
    if !request.state.is_terminal() || request.state == State::Succeeded {
        return None;
    }
    let said = match data {
        crate::events::EventData::State(s) => s.outcome.clone().or_else(|| s.why.clone()),
        _ => None,
    };
    let outcome = said
        .or_else(|| request.outcome.clone())
        .unwrap_or_else(|| request.state.to_string());
    let text = match request.state {
        State::Failed => format!(":x: Failed: {}", escape(&outcome)),
        s => format!("{s}: {}", escape(&outcome)),
    };
    Some(clip(&text, MAX_TEXT))
}

/// An approval prompt as a message: the summary as its text, the blocks with the buttons.
pub fn prompt_content(signer: &Signer, id: &RequestId, summary: &str, progress: Option<&str>) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(summary.to_owned())
        .with_blocks(approval_blocks(signer, id, summary, progress))
}

/// The action_id prefix of command buttons.
pub const RUN_ACTION: &str = "run-";

/// The prompt after the decision: the buttons are gone, who decided is there.
pub fn decided_content(summary: &str, decided: &str) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(summary.to_owned())
        .with_blocks(vec![section(summary), context(decided)])
}

fn section(text: &str) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text.to_owned())))
        .into()
}

fn context(text: &str) -> SlackBlock {
    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(
        text.to_owned(),
    ))])
    .into()
}

/// An ephemeral answer for a response_url: visible to the person only, original untouched.
/// `text` is plain (it may quote what the person typed) and is escaped here.
pub fn ephemeral(text: &str) -> serde_json::Value {
    ephemeral_raw(&escape(text))
}

/// As [`ephemeral`], for text that is already mrkdwn (escaped where it quotes anyone).
pub fn ephemeral_raw(mrkdwn: &str) -> serde_json::Value {
    serde_json::json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": clip(mrkdwn, MAX_TEXT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_undoes_what_slack_escapes_in_command_text() {
        assert_eq!(
            unescape("p99&lt;300ms errors&lt;1% rate&gt;=5"),
            "p99<300ms errors<1% rate>=5"
        );
        assert_eq!(unescape("a &amp;lt; b"), "a &lt; b");
        assert_eq!(unescape(&escape("x < y & z")), "x < y & z");
    }

    #[test]
    fn output_is_escaped_in_code_blocks_and_lines() {
        assert_eq!(output_text("<!channel>"), "&lt;!channel&gt;");
        assert_eq!(
            output_text("a\n<https://evil|Approve>"),
            "```\na\n&lt;https://evil|Approve&gt;\n```"
        );
        assert_eq!(mention(None, "<!here>"), "&lt;!here&gt;");
    }
}
