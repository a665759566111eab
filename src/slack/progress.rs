//! Coalescing of progress updates per thread: the first update goes out at once, those that
//! follow within the interval are collected and sent as one reply when it ends, so a fast
//! rollout posts a few messages instead of dozens. Nothing is dropped: a merged reply
//! carries every line (the oldest are summarised past a limit).

use std::time::{Duration, Instant};

/// Lines one merged reply lists before it summarises the oldest.
const MAX_LINES: usize = 30;

#[derive(Debug, Default)]
pub struct ProgressBuffer {
    last_sent: Option<Instant>,
    pending: Vec<String>,
    pub flush_scheduled: bool,
}

/// What to do with a progress update right now.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Send this text now.
    Send(String),
    /// Buffered; make sure a flush happens at this instant.
    Hold { flush_at: Instant },
}

impl ProgressBuffer {
    pub fn offer(&mut self, line: &str, now: Instant, interval: Duration) -> Offer {
        match self.last_sent {
            Some(t) if now.duration_since(t) < interval || !self.pending.is_empty() => {
                self.pending.push(line.to_owned());
                Offer::Hold { flush_at: t + interval }
            }
            _ if !self.pending.is_empty() => {
                self.pending.push(line.to_owned());
                Offer::Hold { flush_at: now }
            }
            _ => {
                self.last_sent = Some(now);
                Offer::Send(line.to_owned())
            }
        }
    }

    /// The merged text of everything held, if anything is; the buffer is then empty.
    pub fn take(&mut self, now: Instant) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        self.last_sent = Some(now);
        let lines = std::mem::take(&mut self.pending);
        let skipped = lines.len().saturating_sub(MAX_LINES);
        let mut text = String::new();
        if skipped > 0 {
            text.push_str(&format!("({skipped} earlier updates)\n"));
        }
        text.push_str(&lines[skipped..].join("\n"));
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_goes_out_then_the_burst_is_merged() {
        let mut b = ProgressBuffer::default();
        let t0 = Instant::now();
        let iv = Duration::from_millis(500);
        assert_eq!(b.offer("1/3", t0, iv), Offer::Send("1/3".into()));
        assert_eq!(
            b.offer("2/3", t0 + Duration::from_millis(10), iv),
            Offer::Hold { flush_at: t0 + iv }
        );
        assert!(matches!(
            b.offer("3/3", t0 + Duration::from_millis(20), iv),
            Offer::Hold { .. }
        ));
        assert_eq!(b.take(t0 + iv).as_deref(), Some("2/3\n3/3"));
        assert_eq!(b.take(t0 + iv), None);
        // Quiet for a whole interval: straight out again.
        assert_eq!(b.offer("done", t0 + iv * 3, iv), Offer::Send("done".into()));
    }

    #[test]
    fn long_bursts_keep_the_latest_lines() {
        let mut b = ProgressBuffer::default();
        let t0 = Instant::now();
        let iv = Duration::from_secs(10);
        b.offer("first", t0, iv);
        for i in 0..40 {
            b.offer(&format!("line {i}"), t0, iv);
        }
        let text = b.take(t0).unwrap();
        assert!(text.starts_with("(10 earlier updates)\nline 10\n"), "{text}");
        assert!(text.ends_with("line 39"));
    }
}
