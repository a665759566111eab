//! Value types that validate on construction: once you hold one, it is valid.

mod duration;
mod ids;
mod image;
mod name;
mod state;

pub use duration::{DurationError, HumanDuration};
pub use ids::{RequestId, new_token, ordered_token};
pub use image::{ImageError, ImageRef};
pub use name::{Name, NameError};
pub use state::{State, Surface, UnknownValue};

/// Milliseconds since the Unix epoch; the store keeps time as integers so SQLite and
/// PostgreSQL agree on it.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A length of time as people say it: "45s", "8m 32s", "2h 5m", "3d 4h" (two units at
/// most; negative counts as zero).
pub fn human_duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) if sec == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// Renders a stored millisecond timestamp for people (UTC, RFC 3339, second precision).
pub fn format_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod duration_tests {
    use super::human_duration_ms;

    #[test]
    fn durations_read_as_people_say_them() {
        for (ms, text) in [
            (0, "0s"),
            (45_400, "45s"),
            (512_000, "8m 32s"),
            (120_000, "2m"),
            (7_500_000, "2h 5m"),
            (3_600_000, "1h"),
            (273_600_000, "3d 4h"),
            (86_400_000, "1d"),
            (-5, "0s"),
        ] {
            assert_eq!(human_duration_ms(ms), text, "{ms} ms");
        }
    }
}
