//! The load generator behind `deckhand loadgen` and the pods of `loadtest`: HTTP/1.1 over
//! hyper's own client connections (keep-alive, one request at a time per connection), an
//! open model (constant arrival rate, latency measured from each request's intended start
//! so a slow target cannot hide behind a slow sender) and a closed model (C connections
//! sending back to back). Results are a [`Report`] whose JSON merges exactly with others.

pub mod chart;
mod engine;
pub mod histogram;
pub mod report;
pub mod threshold;

use std::{fmt, str::FromStr, time::Duration};

use bytes::Bytes;
use hyper::{
    Method,
    header::{HeaderName, HeaderValue},
};

pub use engine::{RunError, run};
pub use histogram::LatencyHistogram;
pub use report::{ErrorKind, Report};
pub use threshold::{Threshold, Verdict};

/// The most requests one generator keeps in flight in the open model; beyond it a request
/// waits for a free connection, and that wait counts in its latency.
pub const MAX_IN_FLIGHT: usize = 1024;
pub const MAX_CONCURRENCY: u32 = 10_000;
pub const MAX_RATE: f64 = 1_000_000.0;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("'{0}' is not an http:// URL: {1}")]
    Url(String, String),
    #[error(
        "https:// targets are not supported by the load generator; use the service's plain http:// address (in-cluster services are reached over http)"
    )]
    Https,
    #[error("'{0}' is not an HTTP method")]
    Method(String),
    #[error("header '{0}' is not `Name: value`")]
    Header(String),
    #[error("the rate must be between 0 and {MAX_RATE} requests per second, not {0}")]
    Rate(String),
    #[error("the concurrency must be between 1 and {MAX_CONCURRENCY}, not {0}")]
    Concurrency(u32),
    #[error("'{0}' is not a duration: use a number and a unit, e.g. 500ms, 30s, 5m")]
    Duration(String),
    #[error("'{0}' is not a load model: write rate=R or concurrency=C")]
    Model(String),
}

/// A latency or timeout as typed: `250us`, `300ms`, `2s`, `1m`; fractions allowed (`1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, PlanError> {
    let err = || PlanError::Duration(s.to_owned());
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| err())?;
    let scale = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(err()),
    };
    let secs = n * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 7.0 * 86_400.0 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Writes a duration the way `parse_duration` reads it, as short as exact allows.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

/// Where the requests go and what they carry.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    /// host:port to connect to.
    authority: String,
    /// The Host header.
    host: String,
    path: String,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Target {
    pub fn new(url: &str) -> Result<Self, PlanError> {
        let bad = |why: &str| PlanError::Url(url.to_owned(), why.to_owned());
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(PlanError::Https),
            Some(other) => return Err(bad(&format!("scheme {other} is not http"))),
            None => return Err(bad("it has no scheme; write http://host:port/path")),
        }
        let authority = uri.authority().ok_or_else(|| bad("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported; send them with --header"));
        }
        let port = authority.port_u16().unwrap_or(80);
        let host = authority.host();
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        Ok(Self {
            url: url.to_owned(),
            authority: format!("{host}:{port}"),
            host: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            method: Method::GET,
            headers: Vec::new(),
            body: Bytes::new(),
        })
    }

    pub fn method(mut self, method: &str) -> Result<Self, PlanError> {
        self.method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| PlanError::Method(method.to_owned()))?;
        Ok(self)
    }

    /// Adds a `Name: value` header.
    pub fn header(mut self, line: &str) -> Result<Self, PlanError> {
        let bad = || PlanError::Header(line.to_owned());
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
        self.headers.push((name, value));
        Ok(self)
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn method_name(&self) -> &str {
        self.method.as_str()
    }
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Open model: this many requests per second, whatever the target does.
    Rate(f64),
    /// Closed model: this many connections, each sending its next request when the last
    /// one is answered.
    Concurrency(u32),
}

impl Mode {
    pub fn rate(per_second: f64) -> Result<Self, PlanError> {
        if !(per_second.is_finite() && per_second > 0.0 && per_second <= MAX_RATE) {
            return Err(PlanError::Rate(per_second.to_string()));
        }
        Ok(Mode::Rate(per_second))
    }

    pub fn concurrency(connections: u32) -> Result<Self, PlanError> {
        if !(1..=MAX_CONCURRENCY).contains(&connections) {
            return Err(PlanError::Concurrency(connections));
        }
        Ok(Mode::Concurrency(connections))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Rate(r) => write!(f, "rate {r}/s"),
            Mode::Concurrency(c) => write!(f, "{c} connections"),
        }
    }
}

impl FromStr for Mode {
    type Err = PlanError;
    /// `rate=R` or `concurrency=C`, as the report's JSON writes them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PlanError::Model(s.to_owned());
        match s.split_once('=') {
            Some(("rate", r)) => Mode::rate(r.parse().map_err(|_| bad())?),
            Some(("concurrency", c)) => Mode::concurrency(c.parse().map_err(|_| bad())?),
            _ => Err(bad()),
        }
    }
}

/// One load generator run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub mode: Mode,
    pub duration: Duration,
    /// Per request, connecting included.
    pub timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked() {
        let t = Target::new("http://shop.checkout.svc:8080/api?x=1").unwrap();
        assert_eq!(t.authority, "shop.checkout.svc:8080");
        assert_eq!(t.path, "/api?x=1");
        assert_eq!(Target::new("http://localhost").unwrap().authority, "localhost:80");
        assert_eq!(Target::new("https://x").unwrap_err(), PlanError::Https);
        assert!(matches!(Target::new("shop:80"), Err(PlanError::Url(..))));
        assert!(matches!(Target::new("http://u:p@x/"), Err(PlanError::Url(..))));
        assert!(Target::new("http://x/").unwrap().header("nocolon").is_err());
        assert!(Target::new("http://x/").unwrap().method("GE T").is_err());
    }

    #[test]
    fn durations_read_as_typed() {
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        for bad in ["", "ms", "0s", "-1s", "5", "3 weeks"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_have_bounds() {
        assert!(Mode::rate(0.0).is_err());
        assert!(Mode::rate(f64::NAN).is_err());
        assert!(Mode::concurrency(0).is_err());
        assert_eq!("rate=50".parse::<Mode>().unwrap(), Mode::Rate(50.0));
        assert_eq!("concurrency=4".parse::<Mode>().unwrap(), Mode::Concurrency(4));
    }
}
