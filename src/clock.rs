//! The time of a run, and how times and spans are shown to an admin.
//!
//! Every stage that needs "now" gets it from here, so that `TEND_NOW` (for
//! tests of reminders and budgets) moves the whole pass at once.

use chrono::TimeZone;

/// The time of this run, in unix seconds. `TEND_NOW` overrides the clock; it
/// exists for tests (reminders, budgets) and is documented as such.
pub fn now() -> i64 {
    if let Some(t) = std::env::var("TEND_NOW").ok().and_then(|v| v.parse().ok()) {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The same instant in the local time zone, for time classes.
pub fn local(t: i64) -> chrono::DateTime<chrono::Local> {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| t.with_timezone(&chrono::Local))
        .unwrap_or_else(chrono::Local::now)
}

/// The real clock in unix milliseconds (CPU load is measured with it even
/// under `TEND_NOW`).
pub fn real_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A unix time as local `YYYY-MM-DD HH:MM`.
pub fn local_time(t: i64) -> String {
    match chrono::Local.timestamp_opt(t, 0) {
        chrono::LocalResult::Single(d) | chrono::LocalResult::Ambiguous(d, _) => {
            d.format("%Y-%m-%d %H:%M").to_string()
        }
        chrono::LocalResult::None => t.to_string(),
    }
}

/// `45 s`, `12 min`, `3 h`, `2 d`.
pub fn span(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86400),
    }
}

/// A setting's duration as written, never rounded: `90 s`, `10 min`, `6 h`
/// (a span, [`span`], is rounded down to its unit; a setting must not be).
pub fn exact(seconds: i64) -> String {
    match seconds.max(0) {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_table() {
        for (s, want) in [
            (0, "0 s"),
            (90, "90 s"),
            (600, "10 min"),
            (5400, "90 min"),
            (21_600, "6 h"),
            (86_400, "24 h"),
        ] {
            assert_eq!(exact(s), want);
        }
    }

    #[test]
    fn span_table() {
        for (s, want) in [
            (-5, "0 s"),
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (2400, "40 min"),
            (7200, "2 h"),
            (200_000, "2 d"),
        ] {
            assert_eq!(span(s), want);
        }
    }
}
