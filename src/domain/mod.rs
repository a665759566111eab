//! Value types that validate on construction: once you hold one, it is valid.

mod duration;
mod ids;
mod image;
mod name;
mod state;

pub use duration::{DurationError, HumanDuration};
pub use ids::{RequestId, new_token};
pub use image::{ImageError, ImageRef};
pub use name::{Name, NameError};
pub use state::{State, Surface, UnknownValue};

/// Milliseconds since the Unix epoch; the store keeps time as integers so SQLite and
/// PostgreSQL agree on it.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Renders a stored millisecond timestamp for people (UTC, RFC 3339, second precision).
pub fn format_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => ms.to_string(),
    }
}
