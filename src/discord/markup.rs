//! Discord markdown for text deckhand did not write (command text, outcomes, reasons, names,
//! progress from the cluster). Every character Discord reads as markdown or as the start of
//! a mention (`@everyone`, `<@id>`, `<#id>`, `<@&id>`, `</cmd:id>`, `<t:…>`) or a masked link
//! (`[label](url)`) is backslash-escaped, so it shows as typed and does nothing. Messages
//! also carry `allowed_mentions: {"parse": []}` (see `publish::message_body`), so even text
//! that slipped through pings no one.

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
    use super::{escape, inert};

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
