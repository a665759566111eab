//! Turns the keystrokes of a session into the lines a person typed, for tiers that record
//! shells. It follows what a terminal's line discipline does with the common editing keys
//! (backspace, Ctrl-U, Ctrl-C) and drops escape sequences (arrows, function keys), so a line
//! recalled from the shell's history shows as what was typed to recall it, not as the
//! command that ran: the record is of input, which is what deckhand sees.

/// A single line is cut here; a session keeps at most `MAX_LINES`.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 5000;
const TRUNCATED: &str = "[recording stopped: too many lines]";

#[derive(Debug, Default)]
pub struct Recorder {
    line: Vec<u8>,
    lines: Vec<String>,
    escape: Escape,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [ ...` until its final byte.
    Csi,
    /// After `ESC O`: one more byte.
    Ss3,
}

impl Recorder {
    /// Feeds typed bytes; true when a line was completed (so the record should be saved).
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        let before = self.lines.len();
        for &b in bytes {
            match self.escape {
                Escape::Start => {
                    self.escape = match b {
                        b'[' => Escape::Csi,
                        b'O' => Escape::Ss3,
                        _ => Escape::None,
                    };
                    continue;
                }
                Escape::Csi => {
                    if (0x40..=0x7e).contains(&b) {
                        self.escape = Escape::None;
                    }
                    continue;
                }
                Escape::Ss3 => {
                    self.escape = Escape::None;
                    continue;
                }
                Escape::None => {}
            }
            match b {
                0x1b => self.escape = Escape::Start,
                b'\r' | b'\n' => self.end_line(),
                // Backspace (DEL or ^H): one character, however many bytes it took.
                0x7f | 0x08 => {
                    while let Some(last) = self.line.pop() {
                        if last & 0xc0 != 0x80 {
                            break;
                        }
                    }
                }
                // ^C and ^U throw the line away: it never ran.
                0x03 | 0x15 => self.line.clear(),
                b if b < 0x20 => {}
                b => {
                    if self.line.len() < MAX_LINE {
                        self.line.push(b);
                    }
                }
            }
        }
        self.lines.len() != before
    }

    fn end_line(&mut self) {
        let text = String::from_utf8_lossy(&self.line).trim().to_owned();
        self.line.clear();
        if text.is_empty() || self.lines.last().is_some_and(|l| l == TRUNCATED) {
            return;
        }
        if self.lines.len() + 1 >= MAX_LINES {
            self.lines.push(TRUNCATED.into());
        } else {
            self.lines.push(text);
        }
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(chunks: &[&[u8]]) -> Vec<String> {
        let mut r = Recorder::default();
        for c in chunks {
            r.feed(c);
        }
        r.lines().to_vec()
    }

    #[test]
    fn keeps_what_was_entered_as_edited() {
        assert_eq!(typed(&[b"ech", b"o hi\r"]), ["echo hi"]);
        assert_eq!(typed(&[b"lss\x7f -l\r"]), ["ls -l"]);
        assert_eq!(typed(&[b"rm -rf /\x03", b"id\r"]), ["id"]);
        assert_eq!(typed(&[b"oops\x15pwd\n"]), ["pwd"]);
        assert_eq!(typed(&[b"\r\r  \r"]), Vec::<String>::new());
        assert_eq!(typed(&["caf\u{e9}\x7fe\r".as_bytes()]), ["cafe"]);
    }

    #[test]
    fn escape_sequences_are_not_text() {
        assert_eq!(typed(&[b"\x1b[A\x1b[1;5Cls\x1bOA\r"]), ["ls"]);
        // Split across reads, as keys often are.
        assert_eq!(typed(&[b"a\x1b", b"[", b"D", b"b\r"]), ["ab"]);
    }

    #[test]
    fn feed_says_when_a_line_is_complete() {
        let mut r = Recorder::default();
        assert!(!r.feed(b"echo"));
        assert!(r.feed(b"\r"));
        assert!(!r.feed(b"\r"));
    }
}
