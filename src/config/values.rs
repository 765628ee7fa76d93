//! What a valid value is, said once for the flags and the file alike: each
//! check is a clap value parser and a serde `deserialize_with`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// `10s`, `500ms`, `2m` or a bare number of seconds; more than 0, at most a day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        other => return Err(format!("unknown unit {other:?} in {text:?}; use ms, s or m")),
    };
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{text:?} must be more than 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration as `parse_duration` reads it back: `10s`, `500ms`.
pub fn duration_to_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Events per second: a finite number, 0 (the limit off) or more.
pub fn check_rate(rate: f64) -> Result<f64, String> {
    if rate.is_finite() && rate >= 0.0 {
        Ok(rate)
    } else {
        Err(format!("{rate} is not a rate: use events per second, 0 (off) or more"))
    }
}

/// A rate from the command line or the environment.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let rate = text
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{text:?} is not a number of events per second"))?;
    check_rate(rate)
}

/// `value` when it is within `min..=max`.
fn check_range<T: PartialOrd + std::fmt::Display>(value: T, min: T, max: T) -> Result<T, String> {
    if value >= min && value <= max {
        Ok(value)
    } else {
        Err(format!("{value} is out of range: use {min} to {max}"))
    }
}

/// Each bounded integer: its range, a clap parser and a serde reader.
macro_rules! bounded {
    ($($name:ident, $parse:ident: $ty:ty = $min:expr, $max:expr;)*) => {$(
        #[doc = concat!("The bound of [`", stringify!($parse), "`], for the file.")]
        pub fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            check_range(<$ty>::deserialize(d)?, $min, $max).map_err(D::Error::custom)
        }

        #[doc = concat!("`", stringify!($min), "..=", stringify!($max), "`, from the command line.")]
        pub fn $parse(text: &str) -> Result<$ty, String> {
            let value = text
                .trim()
                .parse::<$ty>()
                .map_err(|_| format!("{text:?} is not a whole number"))?;
            check_range(value, $min, $max)
        }
    )*};
}

bounded! {
    cache_mib, parse_cache_mib: u64 = 1, 65_536;
    max_header_bytes, parse_max_header_bytes: usize = 1024, 1024 * 1024;
    max_headers, parse_max_headers: usize = 1, 10_000;
    max_connections, parse_max_connections: usize = 1, 1_000_000;
}

/// A rate, for the file.
pub fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    check_rate(f64::deserialize(d)?).map_err(D::Error::custom)
}

/// A `tracing` filter such as `info` or `warn,matrix_membership=debug`.
pub fn parse_log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("{text:?} is not a log filter such as info or warn,matrix_membership=debug: {e}"))
}

/// A log filter, for the file.
pub fn log_filter<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_log_filter(&String::deserialize(d)?).map_err(D::Error::custom)
}

/// Durations in the file are text, as on the command line: `header_timeout = "10s"`.
pub mod duration_text {
    use super::*;

    /// Writes `10s`, `500ms`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&duration_to_text(*d))
    }

    /// Reads what `parse_duration` reads.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse_duration(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_written_out_read_back_the_same() {
        for d in [
            Duration::from_secs(10),
            Duration::from_millis(500),
            Duration::from_millis(1500),
            Duration::from_micros(250),
        ] {
            assert_eq!(
                parse_duration(&duration_to_text(d)).unwrap(),
                d,
                "{}",
                duration_to_text(d)
            );
        }
    }

    #[test]
    fn negative_and_infinite_rates_are_refused() {
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert_eq!(parse_rate("0"), Ok(0.0));
        for bad in ["-1", "inf", "NaN", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
