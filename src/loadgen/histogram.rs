//! Latency histograms in microseconds that survive a trip through JSON unchanged, so the
//! summaries of several load generators (the pods of one load test) merge exactly.

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Latencies above an hour are recorded as an hour: no request timeout goes that far.
const HIGHEST_US: u64 = 3_600_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram precision {0} is outside 1..=5 significant figures")]
    Precision(u8),
    #[error("histogram value {0}us is outside 1..={HIGHEST_US}us")]
    Value(u64),
    #[error("cannot merge histograms of different precision ({0} and {1} significant figures)")]
    Mismatch(u8, u8),
}

/// An HDR histogram of latencies in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

impl LatencyHistogram {
    /// `sigfig` significant figures: 3 for a run's overall latency (0.1% error), 2 for
    /// the per-second series, which only have to draw a chart.
    pub fn new(sigfig: u8) -> Result<Self, HistogramError> {
        if !(1..=5).contains(&sigfig) {
            return Err(HistogramError::Precision(sigfig));
        }
        let inner = Histogram::new_with_bounds(1, HIGHEST_US, sigfig).map_err(|_| HistogramError::Precision(sigfig))?;
        Ok(Self { inner })
    }

    pub fn overall() -> Self {
        Self::new(3).unwrap_or_else(|_| unreachable!("3 significant figures are valid"))
    }

    pub fn per_second() -> Self {
        Self::new(2).unwrap_or_else(|_| unreachable!("2 significant figures are valid"))
    }

    pub fn sigfig(&self) -> u8 {
        self.inner.sigfig()
    }

    pub fn record_us(&mut self, us: u64) {
        self.inner.saturating_record(us.clamp(1, HIGHEST_US));
    }

    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// Latency at `quantile` (0..=1) in microseconds; 0 when empty.
    pub fn quantile_us(&self, quantile: f64) -> u64 {
        if self.inner.is_empty() {
            return 0;
        }
        self.inner.highest_equivalent(self.inner.value_at_quantile(quantile))
    }

    pub fn max_us(&self) -> u64 {
        if self.inner.is_empty() { 0 } else { self.inner.max() }
    }

    pub fn merge(&mut self, other: &LatencyHistogram) -> Result<(), HistogramError> {
        if other.sigfig() != self.sigfig() {
            return Err(HistogramError::Mismatch(self.sigfig(), other.sigfig()));
        }
        // Same bounds and precision: the buckets line up, so adding cannot fail.
        self.inner
            .add(&other.inner)
            .map_err(|_| HistogramError::Mismatch(self.sigfig(), other.sigfig()))
    }

    /// (bucket value, count) of every non-empty bucket, lowest first. Each bucket value
    /// records into the same bucket again, which is what makes the JSON form exact.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.inner
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }
}

impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.sigfig() == other.sigfig() && self.buckets() == other.buckets()
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    sigfig: u8,
    /// [bucket value in us, count] pairs.
    buckets: Vec<(u64, u64)>,
}

impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            sigfig: self.sigfig(),
            buckets: self.buckets(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        let mut h = LatencyHistogram::new(wire.sigfig).map_err(serde::de::Error::custom)?;
        for (value, count) in wire.buckets {
            if !(1..=HIGHEST_US).contains(&value) {
                return Err(serde::de::Error::custom(HistogramError::Value(value)));
            }
            h.inner.saturating_record_n(value, count);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_every_bucket() {
        let mut h = LatencyHistogram::overall();
        for us in [1, 17, 999, 1_000, 1_001, 123_456, 9_999_999] {
            h.record_us(us);
        }
        let json = serde_json::to_string(&h).unwrap();
        let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.quantile_us(0.5), h.quantile_us(0.5));
        assert_eq!(back.max_us(), h.max_us());
    }

    #[test]
    fn bad_json_is_refused_with_the_reason() {
        let e = serde_json::from_str::<LatencyHistogram>(r#"{"sigfig":9,"buckets":[]}"#).unwrap_err();
        assert!(e.to_string().contains("precision 9"), "{e}");
        let e = serde_json::from_str::<LatencyHistogram>(r#"{"sigfig":3,"buckets":[[0,1]]}"#).unwrap_err();
        assert!(e.to_string().contains("value 0us"), "{e}");
    }

    #[test]
    fn different_precisions_do_not_merge() {
        let mut a = LatencyHistogram::overall();
        assert_eq!(
            a.merge(&LatencyHistogram::per_second()),
            Err(HistogramError::Mismatch(3, 2))
        );
    }
}
