use std::{fmt, str::FromStr, time::Duration};

/// A duration as people type it in chat: `90s`, `30m`, `8h`, `2d`, `1w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a duration: use a whole number followed by s, m, h, d or w (e.g. 30m, 8h, 2d)")]
pub struct DurationError(pub String);

impl HumanDuration {
    pub fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub fn as_duration(&self) -> Duration {
        self.0
    }

    pub fn as_millis_i64(&self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationError(s.to_owned());
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err(err());
        }
        let n: u64 = digits.parse().map_err(|_| err())?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(err()),
        };
        let secs = n.checked_mul(mult).ok_or_else(err)?;
        if secs == 0 {
            return Err(err());
        }
        Ok(Self(Duration::from_secs(secs)))
    }
}

impl fmt::Display for HumanDuration {
    /// Prints the largest unit up to days that divides exactly ("7d" reads better than
    /// "1w"), so values round-trip through `parse`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if secs >= size && secs.is_multiple_of(size) {
                return write!(f, "{}{unit}", secs / size);
            }
        }
        write!(f, "{secs}s")
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for (text, secs) in [
            ("30m", 1800),
            ("8h", 28_800),
            ("2d", 172_800),
            ("90s", 90),
            ("7d", 604_800),
        ] {
            let d: HumanDuration = text.parse().unwrap();
            assert_eq!(d.as_duration().as_secs(), secs);
            assert_eq!(d.to_string(), text);
        }
        assert_eq!("120m".parse::<HumanDuration>().unwrap().to_string(), "2h");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "h",
            "10",
            "3x",
            "-1h",
            "1.5h",
            "0m",
            "99999999999999999999d",
            "1h30m",
        ] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
        }
    }
}
