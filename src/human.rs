//! Pieces of the text autofw writes for people, in one place so every
//! command says them the same way: counts with their plural, timestamps,
//! unified diffs of rule listings. Pure.

use std::time::{Duration, UNIX_EPOCH};

/// `one` or `many`, by `n`: `plural(n, "is", "are")`.
pub fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `1 process`, `2 processes`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// Seconds since the epoch as `2026-11-25T07:50:50Z`.
pub fn utc(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A unified diff of two listings, `context` lines around each change.
pub fn unified_diff(
    old_name: &str,
    new_name: &str,
    old: &str,
    new: &str,
    context: usize,
) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(context)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_plurals() {
        assert_eq!(count(1, "process", "processes"), "1 process");
        assert_eq!(count(0, "process", "processes"), "0 processes");
        assert_eq!(plural(2, "is", "are"), "are");
    }

    #[test]
    fn timestamps_are_utc_seconds() {
        assert_eq!(utc(1_764_057_050), "2025-11-25T07:50:50Z");
    }

    #[test]
    fn diffs_name_both_sides() {
        let diff = unified_diff("old", "new", "a\nb\n", "a\nc\n", 2);
        assert!(diff.starts_with("--- old\n+++ new\n"), "{diff}");
        assert!(diff.contains("-b\n+c\n"), "{diff}");
    }
}
