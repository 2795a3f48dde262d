//! Human-readable numbers, and text from the target made safe to show.
use std::{
    borrow::Cow,
    fmt::Write as _,
    time::{Duration, UNIX_EPOCH},
};

/// Whether `c` must not reach a terminal as it is: C0 and C1 controls, DEL,
/// and the bidirectional overrides that reorder what follows them.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text the traced program chose (thread names, command lines), safe to
/// print: control characters are shown escaped (`\x1b`, `\n`) instead of
/// acting on the terminal. Text without any comes back borrowed.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

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

/// A thread's Go role after its name: `" [sysmon]"`, `" [pinned]"`; nothing
/// for plain workers and threads the M list does not know.
pub fn role_tag(role: Option<crate::goruntime::GoRole>, pinned: bool) -> String {
    use crate::goruntime::GoRole;
    match role {
        Some(GoRole::Worker) | None if pinned => " [pinned]".to_string(),
        Some(GoRole::Worker) | None => String::new(),
        Some(r @ (GoRole::Main | GoRole::Template | GoRole::Sysmon)) if pinned => format!(" [{}, pinned]", r.label()),
        Some(r) => format!(" [{}]", r.label()),
    }
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
    fn control_characters_are_escaped() {
        assert!(matches!(clean("worker-1"), Cow::Borrowed("worker-1")));
        assert_eq!(clean("\x1b[2Jgotcha"), "\\x1b[2Jgotcha");
        assert_eq!(clean("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(clean("x\u{7f}\u{9b}y"), "x\\x7f\\x9by");
        assert_eq!(clean("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(clean("héllo ✓"), "héllo ✓");
    }

    #[test]
    fn counts_and_wall_time() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(100), "100");
        assert_eq!(wall(1_700_000_000_123_000_000), "2023-11-14T22:13:20.123Z");
    }
}
