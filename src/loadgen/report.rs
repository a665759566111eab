//! What a run measured: counts, error kinds, the latency histogram and a per-second
//! series. The JSON form is what pods print and what `loadtest` merges and stores.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::{Deserialize, Serialize};

use super::{LatencyHistogram, Mode, format_duration, histogram::HistogramError};

/// Why a request got no HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection could not be made (refused, unreachable, DNS).
    Connect,
    /// No complete response within the timeout.
    Timeout,
    /// The connection was closed or reset before the response was complete.
    Reset,
    /// The peer did not speak HTTP/1.1 correctly.
    Protocol,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Protocol => "protocol",
        }
    }
}

/// One second of a run, counted by when requests were meant to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Second {
    pub second: u32,
    /// Requests answered with any status.
    pub responses: u64,
    /// Requests without a response plus responses with status >= 400.
    pub errors: u64,
    pub latency: LatencyHistogram,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub url: String,
    pub method: String,
    /// `rate=R` or `concurrency=C`; the sum over the generators merged into this one.
    pub mode: String,
    /// How many generators (pods) this report sums.
    pub generators: u32,
    /// The longest of the merged runs, in seconds.
    pub elapsed_s: f64,
    /// Answered requests by status code.
    pub status: BTreeMap<u16, u64>,
    /// Requests without a response, by why.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Latency of answered requests, any status.
    pub latency: LatencyHistogram,
    pub seconds: Vec<Second>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot merge load results of different targets ({0} and {1})")]
    Target(String, String),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    #[error("there are no results to merge")]
    Empty,
}

impl Report {
    pub fn responses(&self) -> u64 {
        self.status.values().sum()
    }

    pub fn failed_requests(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Transport errors plus 4xx and 5xx answers.
    pub fn error_count(&self) -> u64 {
        self.failed_requests()
            + self
                .status
                .iter()
                .filter(|(s, _)| **s >= 400)
                .map(|(_, n)| n)
                .sum::<u64>()
    }

    pub fn total(&self) -> u64 {
        self.responses() + self.failed_requests()
    }

    /// Errors as a share of all requests, 0..=1.
    pub fn error_ratio(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            t => self.error_count() as f64 / t as f64,
        }
    }

    /// Answered requests per second.
    pub fn achieved_rate(&self) -> f64 {
        if self.elapsed_s <= 0.0 {
            0.0
        } else {
            self.responses() as f64 / self.elapsed_s
        }
    }

    pub fn percentile(&self, quantile: f64) -> Duration {
        Duration::from_micros(self.latency.quantile_us(quantile))
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.latency.max_us())
    }

    /// Sums reports of the same target: counts and histograms add, per-second series add
    /// second by second (each generator counts from its own start), rates add.
    pub fn merge(reports: &[Report]) -> Result<Report, MergeError> {
        let (first, rest) = reports.split_first().ok_or(MergeError::Empty)?;
        let mut out = first.clone();
        for r in rest {
            out.absorb(r)?;
        }
        Ok(out)
    }

    fn absorb(&mut self, other: &Report) -> Result<(), MergeError> {
        if other.url != self.url {
            return Err(MergeError::Target(self.url.clone(), other.url.clone()));
        }
        self.latency.merge(&other.latency)?;
        for (code, n) in &other.status {
            *self.status.entry(*code).or_default() += n;
        }
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
        for s in &other.seconds {
            match self.seconds.iter_mut().find(|mine| mine.second == s.second) {
                Some(mine) => {
                    mine.responses += s.responses;
                    mine.errors += s.errors;
                    mine.latency.merge(&s.latency)?;
                }
                None => self.seconds.push(s.clone()),
            }
        }
        self.seconds.sort_by_key(|s| s.second);
        self.elapsed_s = self.elapsed_s.max(other.elapsed_s);
        self.generators += other.generators;
        self.mode = merge_modes(&self.mode, &other.mode);
        Ok(())
    }
}

fn merge_modes(a: &str, b: &str) -> String {
    match (a.parse::<Mode>(), b.parse::<Mode>()) {
        (Ok(Mode::Rate(x)), Ok(Mode::Rate(y))) => format!("rate={}", x + y),
        (Ok(Mode::Concurrency(x)), Ok(Mode::Concurrency(y))) => format!("concurrency={}", x + y),
        _ => a.to_owned(),
    }
}

/// Milliseconds with a precision that reads well from 0.05 ms to minutes.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format_duration(Duration::from_millis(d.as_millis() as u64))
    }
}

impl fmt::Display for Report {
    /// The human summary `deckhand loadgen` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {} ({}) for {:.1}s",
            self.method, self.url, self.mode, self.elapsed_s
        )?;
        writeln!(
            f,
            "requests  {} sent, {} answered, {:.1}/s",
            self.total(),
            self.responses(),
            self.achieved_rate()
        )?;
        if self.responses() == 0 {
            writeln!(f, "latency   none: no request was answered")?;
        } else {
            writeln!(
                f,
                "latency   p50 {}  p90 {}  p99 {}  max {}",
                ms(self.percentile(0.5)),
                ms(self.percentile(0.9)),
                ms(self.percentile(0.99)),
                ms(self.max())
            )?;
        }
        let status: Vec<String> = self.status.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        writeln!(
            f,
            "status    {}",
            if status.is_empty() {
                "none".into()
            } else {
                status.join(", ")
            }
        )?;
        write!(
            f,
            "errors    {} ({:.2}%)",
            self.error_count(),
            self.error_ratio() * 100.0
        )?;
        if !self.errors.is_empty() {
            let kinds: Vec<String> = self.errors.iter().map(|(k, n)| format!("{} {n}", k.as_str())).collect();
            write!(f, ": {}", kinds.join(", "))?;
        }
        Ok(())
    }
}

/// Collects one generator's (or one connection's) samples; several are merged at the end.
pub(crate) struct Recorder {
    pub(crate) status: BTreeMap<u16, u64>,
    pub(crate) errors: BTreeMap<ErrorKind, u64>,
    pub(crate) latency: LatencyHistogram,
    pub(crate) seconds: Vec<Second>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            status: BTreeMap::new(),
            errors: BTreeMap::new(),
            latency: LatencyHistogram::overall(),
            seconds: Vec::new(),
        }
    }

    fn second(&mut self, at: Duration) -> &mut Second {
        let idx = at.as_secs() as usize;
        while self.seconds.len() <= idx {
            let second = self.seconds.len() as u32;
            self.seconds.push(Second {
                second,
                responses: 0,
                errors: 0,
                latency: LatencyHistogram::per_second(),
            });
        }
        &mut self.seconds[idx]
    }

    /// `at` is when the request was meant to start, from the run's start.
    pub(crate) fn response(&mut self, at: Duration, status: u16, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        self.latency.record_us(us);
        *self.status.entry(status).or_default() += 1;
        let s = self.second(at);
        s.responses += 1;
        s.latency.record_us(us);
        if status >= 400 {
            s.errors += 1;
        }
    }

    pub(crate) fn error(&mut self, at: Duration, kind: ErrorKind) {
        *self.errors.entry(kind).or_default() += 1;
        self.second(at).errors += 1;
    }

    pub(crate) fn absorb(&mut self, other: Recorder) {
        // Same precision by construction, so merging cannot fail.
        let _ = self.latency.merge(&other.latency);
        for (c, n) in other.status {
            *self.status.entry(c).or_default() += n;
        }
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        for s in other.seconds {
            let mine = self.second(Duration::from_secs(u64::from(s.second)));
            mine.responses += s.responses;
            mine.errors += s.errors;
            let _ = mine.latency.merge(&s.latency);
        }
    }

    pub(crate) fn into_report(self, url: &str, method: &str, mode: Mode, elapsed: Duration) -> Report {
        let mode = match mode {
            Mode::Rate(r) => format!("rate={r}"),
            Mode::Concurrency(c) => format!("concurrency={c}"),
        };
        Report {
            url: url.to_owned(),
            method: method.to_owned(),
            mode,
            generators: 1,
            elapsed_s: elapsed.as_secs_f64(),
            status: self.status,
            errors: self.errors,
            latency: self.latency,
            seconds: self.seconds,
        }
    }
}
