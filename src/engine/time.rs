//! Simulated time: integer nanoseconds since the start of a trial.
//!
//! Invariant: simulated time is never a float. Every event carries a [`SimTime`]; floats appear only
//! when a rate is multiplied by an elapsed [`SimDuration`] (see [`SimDuration::as_secs_f64`]), so two
//! runs of the same trial order their events identically on every machine.

use std::fmt;

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A point in simulated time, in nanoseconds since the start of the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

/// A length of simulated time, in nanoseconds.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct SimDuration(pub u64);

impl SimTime {
    /// The start of every trial.
    pub const ZERO: SimTime = SimTime(0);
    /// A time later than any horizon (used for "never").
    pub const NEVER: SimTime = SimTime(u64::MAX);

    /// Seconds since the start, as a float (for reports and rate integration only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// `self + d`, saturating at [`SimTime::NEVER`].
    pub fn plus(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// The duration from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);

    /// A duration of `s` whole seconds.
    pub const fn from_secs(s: u64) -> SimDuration {
        SimDuration(s * NANOS_PER_SEC)
    }

    /// A duration from float seconds, rounded to the nearest nanosecond and clamped to
    /// `[0, u64::MAX]` (negative and NaN inputs give zero).
    pub fn from_secs_f64(s: f64) -> SimDuration {
        if s.is_nan() || s <= 0.0 {
            return SimDuration::ZERO;
        }
        let ns = (s * NANOS_PER_SEC as f64).round();
        if ns >= u64::MAX as f64 {
            SimDuration(u64::MAX)
        } else {
            SimDuration(ns as u64)
        }
    }

    /// Seconds, as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
}

impl fmt::Display for SimDuration {
    /// Human form, the same syntax scenario files use: `1h30m`, `45s`, `250ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ns = self.0;
        if ns == 0 {
            return write!(f, "0s");
        }
        const UNITS: [(&str, u64); 7] = [
            ("d", 86_400 * NANOS_PER_SEC),
            ("h", 3_600 * NANOS_PER_SEC),
            ("m", 60 * NANOS_PER_SEC),
            ("s", NANOS_PER_SEC),
            ("ms", 1_000_000),
            ("us", 1_000),
            ("ns", 1),
        ];
        for (unit, size) in UNITS {
            if ns >= size {
                write!(f, "{}{}", ns / size, unit)?;
                ns %= size;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{}", SimDuration(self.0))
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

/// Parses a human duration: one or more `<number><unit>` parts, e.g. `90s`, `45m`, `2h`,
/// `1h30m`, `1.5h`, `250ms`. Units: `d`, `h`, `m`, `s`, `ms`, `us`, `ns`.
pub fn parse_duration(text: &str) -> Result<SimDuration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError("empty duration".into()));
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: f64 = 0.0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b'_')
        {
            i += 1;
        }
        let number = &s[start..i];
        if number.is_empty() {
            return Err(DurationError(format!(
                "expected a number at `{}`",
                &s[start..]
            )));
        }
        let value: f64 = number
            .replace('_', "")
            .parse()
            .map_err(|_| DurationError(format!("`{number}` is not a number")))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let scale = match unit {
            "d" => 86_400.0,
            "h" => 3_600.0,
            "m" | "min" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "" => {
                return Err(DurationError(format!(
                    "`{number}` has no unit (write e.g. `{number}s` or `{number}m`)"
                )));
            }
            other => {
                return Err(DurationError(format!(
                    "unknown unit `{other}` (use d, h, m, s, ms, us or ns)"
                )));
            }
        };
        total += value * scale;
    }
    if !total.is_finite() || total * NANOS_PER_SEC as f64 >= u64::MAX as f64 {
        return Err(DurationError("duration is too long".into()));
    }
    Ok(SimDuration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_durations() {
        assert_eq!(parse_duration("90s").unwrap(), SimDuration::from_secs(90));
        assert_eq!(parse_duration("45m").unwrap(), SimDuration::from_secs(2700));
        assert_eq!(parse_duration("2h").unwrap(), SimDuration::from_secs(7200));
        assert_eq!(
            parse_duration("1h30m").unwrap(),
            SimDuration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("1.5h").unwrap(),
            SimDuration::from_secs(5400)
        );
        assert_eq!(parse_duration("250ms").unwrap(), SimDuration(250_000_000));
        assert_eq!(
            parse_duration("1d").unwrap(),
            SimDuration::from_secs(86_400)
        );
    }

    #[test]
    fn refuses_bad_durations_with_reasons() {
        assert!(parse_duration("").unwrap_err().0.contains("empty"));
        assert!(parse_duration("90").unwrap_err().0.contains("no unit"));
        assert!(parse_duration("5x").unwrap_err().0.contains("unknown unit"));
        assert!(
            parse_duration("h")
                .unwrap_err()
                .0
                .contains("expected a number")
        );
        assert!(parse_duration("1..2s").is_err());
        assert!(parse_duration("99999999999999999h").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["1h30m", "45s", "250ms", "2d3h", "0s"] {
            assert_eq!(parse_duration(s).unwrap().to_string(), s);
        }
    }
}
