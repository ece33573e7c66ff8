//! Human sizes (`10GiB`) and durations (`7d`) as they appear in config files and on the
//! command line, parsed strictly and printed in IEC units.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result, Shown};

/// A number of bytes that reads and prints as `10GiB`, `500MB`, `1.5T`, `1024`.
///
/// Suffixes: `B`; decimal `KB MB GB TB` (powers of 1000); binary `KiB MiB GiB TiB` and the
/// bare `K M G T` (powers of 1024, as `du` and `docker` read them). Case-insensitive; a
/// space before the unit and a fraction are allowed. Printed in IEC units.
///
/// ```
/// use cache_core::ByteSize;
/// assert_eq!("10GiB".parse::<ByteSize>().unwrap().bytes(), 10 << 30);
/// assert_eq!("1.5 KB".parse::<ByteSize>().unwrap().bytes(), 1500);
/// assert_eq!(ByteSize::new(1536).to_string(), "1.5 KiB");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteSize(u64);

impl ByteSize {
    /// A size in bytes.
    pub const fn new(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses a size.
    pub fn parse(value: &str) -> Result<Self> {
        let err = |reason| Error::InvalidSize { value: Shown::new(value), reason };
        let s = value.trim();
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        if number.is_empty() {
            return Err(err("it does not start with a number"));
        }
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "mb" => 1000u64.pow(2),
            "gb" => 1000u64.pow(3),
            "tb" => 1000u64.pow(4),
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "t" | "tib" => 1 << 40,
            _ => return Err(err("unknown unit")),
        };
        let (whole, frac) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if frac.contains('.') || frac.is_empty() && number.ends_with('.') {
            return Err(err("the number is malformed"));
        }
        if frac.len() > 9 {
            return Err(err("more than 9 decimal places"));
        }
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| err("the number is too large"))? };
        let mut bytes = whole.checked_mul(multiplier).ok_or_else(|| err("the size is too large"))?;
        if !frac.is_empty() {
            let digits: u64 = frac.parse().map_err(|_| err("the number is malformed"))?;
            let scale = 10u64.pow(u32::try_from(frac.len()).unwrap_or(9));
            let part = u128::from(digits) * u128::from(multiplier) / u128::from(scale);
            bytes = bytes
                .checked_add(u64::try_from(part).map_err(|_| err("the size is too large"))?)
                .ok_or_else(|| err("the size is too large"))?;
        }
        Ok(ByteSize(bytes))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let mut unit = 0;
        let mut whole = self.0;
        while whole >= 1024 && unit < UNITS.len() - 1 {
            whole /= 1024;
            unit += 1;
        }
        if unit == 0 {
            return write!(f, "{} B", self.0);
        }
        // One decimal, rounded down so that a size just under a limit never prints as it.
        let tenths = u128::from(self.0) * 10 / (1u128 << (10 * unit));
        let (int, dec) = (tenths / 10, tenths % 10);
        if dec == 0 { write!(f, "{int} {}", UNITS[unit]) } else { write!(f, "{int}.{dec} {}", UNITS[unit]) }
    }
}

impl FromStr for ByteSize {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    /// Accepts a number of bytes or a string such as `"10GiB"`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(b) => Ok(ByteSize(b)),
            Raw::Text(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses a duration such as `90s`, `30m`, `12h`, `7d`, `2w` or `1d12h` (units may be
/// combined, largest first or not; a bare number is seconds).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(cache_core::parse_duration("1d12h").unwrap(), Duration::from_secs(36 * 3600));
/// assert!(cache_core::parse_duration("7 parsecs").is_err());
/// ```
pub fn parse_duration(value: &str) -> Result<Duration> {
    let err = |reason| Error::InvalidDuration { value: Shown::new(value), reason };
    let s = value.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map(Duration::from_secs).map_err(|_| err("the number is too large"));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(err("expected a number before each unit"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let secs_per: u64 = match &rest[..unit_len] {
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" | "hr" | "hrs" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            "" => return Err(err("a number is missing its unit")),
            _ => return Err(err("unknown unit")),
        };
        rest = &rest[unit_len..];
        total = n.checked_mul(secs_per).and_then(|x| total.checked_add(x)).ok_or_else(|| err("the duration is too large"))?;
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration compactly in the units `parse_duration` reads (`1d12h`, `45s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return if d.is_zero() { "0s".to_owned() } else { format!("{}ms", d.as_millis()) };
    }
    let mut out = String::new();
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&(secs / size).to_string());
            out.push_str(unit);
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        let cases = [
            ("0", 0),
            ("1024", 1024),
            ("10GiB", 10 << 30),
            ("10gib", 10 << 30),
            ("10G", 10 << 30),
            ("10 GB", 10_000_000_000),
            ("1.5KiB", 1536),
            ("0.5 MB", 500_000),
            ("2TB", 2_000_000_000_000),
            (" 7 B ", 7),
            (".5K", 512),
        ];
        for (text, bytes) in cases {
            assert_eq!(ByteSize::parse(text).unwrap().bytes(), bytes, "{text}");
        }
        for bad in ["", "GiB", "-1G", "1.2.3G", "10 parsecs", "99999999999999999999", "20000000000G", "1.", "."] {
            assert!(ByteSize::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ByteSize::parse("1x").unwrap_err().to_string().contains("expected e.g. `500MiB`"));
    }

    #[test]
    fn sizes_print_in_iec_units_rounding_down() {
        assert_eq!(ByteSize::new(0).to_string(), "0 B");
        assert_eq!(ByteSize::new(1023).to_string(), "1023 B");
        assert_eq!(ByteSize::new(1024).to_string(), "1 KiB");
        assert_eq!(ByteSize::new((10 << 30) - 1).to_string(), "9.9 GiB");
        assert_eq!(ByteSize::new(u64::MAX).to_string(), "15.9 EiB");
    }

    #[test]
    fn sizes_deserialize_from_numbers_or_strings() {
        assert_eq!(serde_json::from_str::<ByteSize>("\"1KiB\"").unwrap().bytes(), 1024);
        assert_eq!(serde_json::from_str::<ByteSize>("42").unwrap().bytes(), 42);
        assert!(serde_json::from_str::<ByteSize>("\"lots\"").is_err());
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("2w1d").unwrap(), Duration::from_secs(15 * 86_400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "d", "7x", "7d h", "1.5h", "-3s", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(36 * 3600)), "1d12h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = ByteSize::parse(&s);
            let _ = parse_duration(&s);
        }

        #[test]
        fn durations_round_trip(secs in 0u64..10_000_000_000) {
            let d = Duration::from_secs(secs);
            prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }

        #[test]
        fn byte_counts_round_trip(n in any::<u64>()) {
            prop_assert_eq!(ByteSize::parse(&n.to_string()).unwrap().bytes(), n);
        }
    }
}
