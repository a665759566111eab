//! Pass/fail limits on a load test's results: `p99<300ms`, `max<2s`, `errors<1%`,
//! `rate>=450`. A pipeline gates on the verdict.

use std::{fmt, str::FromStr, time::Duration};

use super::{Report, format_duration, parse_duration, report::ms};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "'{0}' is not a threshold: write p50|p90|p95|p99|p99.9|max<DURATION (p99<300ms), errors<PERCENT (errors<1%) or rate>=N (rate>=450)"
)]
pub struct ThresholdError(pub String);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// The latency at this quantile (or the maximum, at 1.0) stays below the limit.
    Latency { quantile: f64, below: Duration },
    /// Errors (no response, 4xx, 5xx) stay below this share of requests, 0..=1.
    Errors { below: f64 },
    /// At least this many answered requests per second.
    Rate { at_least: f64 },
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ThresholdError(s.to_owned());
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(limit) = t.strip_prefix("errors<") {
            let pct: f64 = limit.strip_suffix('%').ok_or_else(err)?.parse().map_err(|_| err())?;
            if !(0.0..=100.0).contains(&pct) {
                return Err(err());
            }
            return Ok(Threshold::Errors { below: pct / 100.0 });
        }
        if let Some(limit) = t.strip_prefix("rate>=") {
            let rate: f64 = limit.parse().map_err(|_| err())?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(err());
            }
            return Ok(Threshold::Rate { at_least: rate });
        }
        let (metric, limit) = t.split_once('<').ok_or_else(err)?;
        let quantile = match metric {
            "max" => 1.0,
            _ => {
                let pct: f64 = metric.strip_prefix('p').ok_or_else(err)?.parse().map_err(|_| err())?;
                if !(pct > 0.0 && pct < 100.0) {
                    return Err(err());
                }
                pct / 100.0
            }
        };
        let below = parse_duration(limit).map_err(|_| err())?;
        Ok(Threshold::Latency { quantile, below })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Latency { quantile, below } if *quantile >= 1.0 => write!(f, "max<{}", format_duration(*below)),
            Threshold::Latency { quantile, below } => write!(f, "p{}<{}", quantile * 100.0, format_duration(*below)),
            Threshold::Errors { below } => write!(f, "errors<{}%", below * 100.0),
            Threshold::Rate { at_least } => write!(f, "rate>={at_least}"),
        }
    }
}

/// One threshold held against a report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Check {
    pub threshold: String,
    pub actual: String,
    pub passed: bool,
}

impl Threshold {
    pub fn check(&self, report: &Report) -> Check {
        let (actual, passed) = match *self {
            Threshold::Latency { quantile, below } => {
                let v = if quantile >= 1.0 {
                    report.max()
                } else {
                    report.percentile(quantile)
                };
                // No answered request means no latency to trust: that fails.
                (ms(v), report.responses() > 0 && v < below)
            }
            Threshold::Errors { below } => {
                let r = report.error_ratio();
                (format!("{:.2}%", r * 100.0), report.total() > 0 && r < below)
            }
            Threshold::Rate { at_least } => {
                let r = report.achieved_rate();
                (format!("{r:.1}/s"), r >= at_least)
            }
        };
        Check {
            threshold: self.to_string(),
            actual,
            passed,
        }
    }
}

/// Every threshold's check; passed when all pass (and when there are none).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl Verdict {
    pub fn of(thresholds: &[Threshold], report: &Report) -> Self {
        let checks: Vec<Check> = thresholds.iter().map(|t| t.check(report)).collect();
        Verdict {
            passed: checks.iter().all(|c| c.passed),
            checks,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.checks.is_empty() {
            return write!(f, "no thresholds set");
        }
        let parts: Vec<String> = self
            .checks
            .iter()
            .map(|c| {
                format!(
                    "{} {} (actual {})",
                    if c.passed { "pass" } else { "FAIL" },
                    c.threshold,
                    c.actual
                )
            })
            .collect();
        write!(
            f,
            "{}: {}",
            if self.passed { "PASSED" } else { "FAILED" },
            parts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_and_print_back() {
        for s in [
            "p99<300ms",
            "p50<2s",
            "p99.9<1s",
            "max<1500ms",
            "errors<1%",
            "errors<0.5%",
            "rate>=450",
        ] {
            let t: Threshold = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert_eq!(
            "p 99 < 300ms".parse::<Threshold>().unwrap(),
            Threshold::Latency {
                quantile: 0.99,
                below: Duration::from_millis(300)
            }
        );
        assert_eq!(
            "rate>=5".parse::<Threshold>().unwrap(),
            Threshold::Rate { at_least: 5.0 }
        );
        for bad in [
            "p99>300ms",
            "p100<1s",
            "errors<1",
            "errors<200%",
            "x<1s",
            "p99<",
            "rate>=0",
            "latency",
        ] {
            let e = bad.parse::<Threshold>().unwrap_err();
            assert!(e.to_string().contains("p99<300ms"), "{bad}: {e}");
        }
    }
}
