//! Human-readable numbers.
use std::time::{Duration, UNIX_EPOCH};

/// A duration in nanoseconds, with a unit that keeps three significant digits.
pub fn ns(v: u64) -> String {
    let f = v as f64;
    if v < 1_000 {
        format!("{v}ns")
    } else if v < 1_000_000 {
        trim(f / 1e3) + "µs"
    } else if v < 1_000_000_000 {
        trim(f / 1e6) + "ms"
    } else {
        trim(f / 1e9) + "s"
    }
}

fn trim(x: f64) -> String {
    let s = if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Wall-clock time (ns since the epoch) as RFC 3339 UTC, to the millisecond.
pub fn wall(unix_ns: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(unix_ns)).to_string()
}

/// A count with thousands separators.
pub fn count(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_three_digits() {
        assert_eq!(ns(0), "0ns");
        assert_eq!(ns(999), "999ns");
        assert_eq!(ns(12_345), "12.3µs");
        assert_eq!(ns(4_100_000), "4.1ms");
        assert_eq!(ns(250_000_000), "250ms");
        assert_eq!(ns(1_234_000_000), "1.23s");
        assert_eq!(ns(60_000_000_000), "60s");
    }

    #[test]
    fn counts_and_wall_time() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(100), "100");
        assert_eq!(wall(1_700_000_000_123_000_000), "2023-11-14T22:13:20.123Z");
    }
}
