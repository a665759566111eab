//! Discord markdown for text deckhand did not write (command text, outcomes, reasons, names,
//! progress from the cluster). Every character Discord reads as markdown or as the start of
//! a mention (`@everyone`, `<@id>`, `<#id>`, `<@&id>`, `</cmd:id>`, `<t:…>`) or a masked link
//! (`[label](url)`) is backslash-escaped, so it shows as typed and does nothing. Messages
//! also carry `allowed_mentions: {"parse": []}` (see `render::message_body`), so even text
//! that slipped through pings no one.

/// How Discord writes what deckhand says on every platform (`crate::chat`): `<@id>` for
/// people, `<@&id>` for a deckhand group mapped to a Discord role. A mention pings only
/// when the message's `allowed_mentions` lists it (`render::prompt_body`).
pub struct DiscordMarkup<'a>(pub &'a crate::chat::Mentions);

impl crate::chat::Markup for DiscordMarkup<'_> {
    fn escape(&self, text: &str) -> String {
        escape(text)
    }

    fn user(&self, name: &str) -> String {
        match self.0.user_id(name).filter(|id| is_snowflake(id)) {
            Some(id) => format!("<@{id}>"),
            None => escape(name),
        }
    }

    fn group(&self, name: &str) -> Option<String> {
        self.0
            .group_id(name)
            .filter(|id| is_snowflake(id))
            .map(|id| format!("<@&{id}>"))
    }
}

/// Whether `id` is a Discord id (digits), safe to put in a mention as it is.
pub fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_digit())
}

/// The characters escaped: markdown emphasis, code, spoilers, quotes and headings,
/// mentions and masked links.
const SPECIAL: &[char] = &['\\', '*', '_', '~', '`', '|', '>', '<', '@', '#', '[', ']'];

/// `s` shown literally in a Discord message.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The text `escape` was given: a backslash before one of the escaped characters is dropped,
/// anything else is kept as it is. `unescape(&escape(s)) == s` for every `s`.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&next) if c == '\\' && SPECIAL.contains(&next) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// `s`, which mixes deckhand's own formatting (code spans in error messages) with text
/// someone typed, with mentions and masked links made inert and the formatting kept.
pub fn inert(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(c, '@' | '<' | '>' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape, inert, unescape};

    #[test]
    fn unescape_gives_back_what_was_escaped() {
        for s in [
            "",
            "plain",
            "\\",
            "a\\*b",
            "**x** `y` @everyone <#1> [l](u)",
            "ends with \\",
            "é\\\\_",
        ] {
            assert_eq!(unescape(&escape(s)), s, "{s:?}");
        }
        assert_eq!(
            unescape("\\n stays"),
            "\\n stays",
            "a backslash before an ordinary character is kept"
        );
    }

    #[test]
    fn inert_keeps_code_spans() {
        assert_eq!(
            inert("Unknown command `x @everyone [a](b)`"),
            "Unknown command `x \\@everyone \\[a\\](b)`"
        );
    }

    #[test]
    fn mentions_links_and_markdown_are_escaped() {
        assert_eq!(escape("@everyone"), "\\@everyone");
        assert_eq!(escape("<@&123>"), "\\<\\@&123\\>");
        assert_eq!(escape("[Approve](https://evil)"), "\\[Approve\\](https://evil)");
        assert_eq!(escape("**x** `y`"), "\\*\\*x\\*\\* \\`y\\`");
        assert_eq!(escape("deploy shop-1 to dev"), "deploy shop-1 to dev");
    }
}
