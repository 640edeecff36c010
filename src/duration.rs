//! One way to write a duration, in the policy and on the command line.
//!
//! `90`, `90s`, `5m`, `5 min`, `2h`, `2hours`, `2 hours`, `1d`: a whole
//! number and a unit (seconds when there is none). The policy's words
//! (`timeout 5 min`) and a command-line value (`--for 2hours`) are read by
//! the same function, so what works in one works in the other.

use std::time::Duration;

/// What an admin is told when a duration cannot be read.
pub(crate) const EXAMPLES: &str = "a duration such as 90s, 30m, 2h or 2 hours";

/// Reads `text` as a duration; spaces between the number and the unit are
/// allowed. None for anything else, or for a duration too large to count.
pub(crate) fn parse(text: &str) -> Option<Duration> {
    let text: String = text.split_whitespace().collect();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().ok()?;
    let unit = match &text[digits..] {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86400,
        _ => return None,
    };
    n.checked_mul(unit).map(Duration::from_secs)
}

/// For clap: the duration in seconds, or the line that says how to write
/// one.
pub(crate) fn seconds(text: &str) -> Result<u64, String> {
    parse(text)
        .map(|d| d.as_secs())
        .ok_or_else(|| format!("`{text}` is not {EXAMPLES}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_table() {
        for (text, want) in [
            ("90", Some(90)),
            ("90s", Some(90)),
            ("30m", Some(1800)),
            ("30 min", Some(1800)),
            ("5 minutes", Some(300)),
            ("2h", Some(7200)),
            ("2hours", Some(7200)),
            ("2 hours", Some(7200)),
            ("1d", Some(86400)),
            ("2 days", Some(172_800)),
            ("0", Some(0)),
            ("", None),
            ("h", None),
            ("2 fortnights", None),
            ("-5m", None),
            ("1.5h", None),
            ("99999999999999999999d", None),
            ("18446744073709551615d", None),
        ] {
            assert_eq!(parse(text).map(|d| d.as_secs()), want, "{text:?}");
        }
    }
}
