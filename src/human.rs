//! Pieces of the text autofw writes for people, in one place so every
//! command says them the same way: counts with their plural, timestamps,
//! unified diffs of rule listings. Pure.

use std::time::{Duration, UNIX_EPOCH};

/// `one` or `many`, by `n`: `plural(n, "is", "are")`.
pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `1 process`, `2 processes`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// `1,000,000`: counts as operators read them.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds since the epoch as `2026-11-25T07:50:50Z`.
pub(crate) fn utc(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A unified diff of two listings, `context` lines around each change.
pub(crate) fn unified_diff(
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

/// A listing for people with long runs of blocks that differ only in a
/// two-digit number (the 64 hash sets and chains of a sharded blocklist)
/// shown as the first block, one `# … N more like it` line and the last.
/// Lossless in what it shows: a block that differs in anything else breaks
/// the run and is printed.
pub(crate) fn fold_numbered_runs(text: &str) -> String {
    /// Runs shorter than this are printed whole.
    const MIN_RUN: usize = 8;
    let lines: Vec<&str> = text.lines().collect();
    let shapes: Vec<String> = lines.iter().map(|l| number_shape(l)).collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        // The block length (1 to 6 lines) that repeats longest from here.
        let mut best: Option<(usize, usize)> = None;
        for period in 1..=6 {
            let block = &shapes[i..(i + period).min(lines.len())];
            // A block starts at a numbered line (`set s_00 {`), not midway.
            if block.len() < period || block[0] == lines[i] {
                continue;
            }
            let mut runs = 1;
            while i + (runs + 1) * period <= lines.len()
                && shapes[i + runs * period..i + (runs + 1) * period] == *block
            {
                runs += 1;
            }
            if runs >= MIN_RUN && best.is_none_or(|(p, r)| runs * period > r * p) {
                best = Some((period, runs));
            }
        }
        let Some((period, runs)) = best else {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
            continue;
        };
        for line in &lines[i..i + period] {
            out.push_str(line);
            out.push('\n');
        }
        let indent: String = lines[i].chars().take_while(|c| c.is_whitespace()).collect();
        let numbers =
            |block: usize| first_numbered(&lines[i + block * period..i + (block + 1) * period]);
        out.push_str(&format!(
            "{indent}# … {} more like it ({} to {})\n",
            runs - 2,
            numbers(1),
            numbers(runs - 2)
        ));
        for line in &lines[i + (runs - 1) * period..i + runs * period] {
            out.push_str(line);
            out.push('\n');
        }
        i += runs * period;
    }
    out
}

/// `line` with every `_NN` (an underscore, two digits, then no digit)
/// written `_##`.
fn number_shape(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        let numbered = b[i] == b'_'
            && b.get(i + 1).is_some_and(u8::is_ascii_digit)
            && b.get(i + 2).is_some_and(u8::is_ascii_digit)
            && !b.get(i + 3).is_some_and(u8::is_ascii_digit);
        if numbered {
            out.push_str("_##");
            i += 3;
        } else {
            let c = line[i..].chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The first word with an `_NN` in `block` (`blocklist_v4_07`).
fn first_numbered(block: &[&str]) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for line in block {
        let shape = number_shape(line);
        if let Some(at) = shape.find("_##") {
            let start = line[..at].rfind(|c| !word(c)).map_or(0, |p| p + 1);
            let end = line[at..].find(|c| !word(c)).map_or(line.len(), |p| at + p);
            return line[start..end].to_string();
        }
    }
    String::new()
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
    fn runs_alike_but_for_a_number_are_folded_and_nothing_else_is() {
        let mut text = String::from("table t {\n");
        for n in 0..64 {
            text.push_str(&format!("\tset s_{n:02} {{\n\t\ttype ipv4_addr\n\t}}\n\n"));
        }
        text.push_str("\tchain c_00 { drop; }\n}\n");
        let folded = fold_numbered_runs(&text);
        assert_eq!(
            folded,
            "table t {\n\tset s_00 {\n\t\ttype ipv4_addr\n\t}\n\n\
             \t# … 62 more like it (s_01 to s_62)\n\
             \tset s_63 {\n\t\ttype ipv4_addr\n\t}\n\n\tchain c_00 { drop; }\n}\n"
        );
        // One block unlike the others: it is shown, and so are its neighbours' runs.
        let odd = text.replace(
            "\tset s_30 {\n\t\ttype ipv4_addr",
            "\tset s_30 {\n\t\ttype ipv6_addr",
        );
        let folded = fold_numbered_runs(&odd);
        assert!(
            folded.contains("set s_30 {\n\t\ttype ipv6_addr"),
            "{folded}"
        );
        assert!(
            folded.contains("# … 28 more like it (s_01 to s_28)"),
            "{folded}"
        );
        // Lines without a number are never folded, however alike.
        assert_eq!(fold_numbered_runs(&"x\n".repeat(20)), "x\n".repeat(20));
    }

    #[test]
    fn diffs_name_both_sides() {
        let diff = unified_diff("old", "new", "a\nb\n", "a\nc\n", 2);
        assert!(diff.starts_with("--- old\n+++ new\n"), "{diff}");
        assert!(diff.contains("-b\n+c\n"), "{diff}");
    }
}
