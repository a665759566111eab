//! Server text made fit for a terminal. Whatever deckhand prints comes in part from other
//! people (request text, deny reasons, chat-typed arguments) and from pods (command output,
//! events); a terminal runs the escape sequences in it: clearing the screen, rewriting the
//! window title, OSC 52 writing the clipboard, OSC 8 disguising links. Every print site of
//! the CLI passes server text through [`safe`]; stdout of an attached shell is the one
//! exception, being the pod's terminal by design.

/// Server text as a terminal may show it: control characters and escape sequences (colour,
/// cursor moves, window titles, OSC 8 links) that a request's text or a pod's output could
/// carry are dropped; newlines and tabs stay.
pub fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            // ESC starts a sequence: CSI (`ESC [` ... final byte) or OSC (`ESC ]` ... BEL/ST);
            // drop it whole so its parameters do not show up as text either.
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    for p in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&p) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    chars.next();
                    while let Some(p) = chars.next() {
                        if p == '\u{7}' || (p == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {
                    chars.next();
                }
            },
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn server_text_loses_terminal_control_sequences() {
        let evil = "ok\u{1b}[2J\u{1b}]0;pwned\u{7}\u{1b}]8;;https://evil\u{1b}\\click\u{1b}]8;;\u{1b}\\ \u{9b}31m\r\u{8}done\n\tnext";
        assert_eq!(safe(evil), "okclick 31mdone\n\tnext");
    }
}
