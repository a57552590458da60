//! Blocklist files as people download them, pure: one address, network or
//! `first-last` range a line, `#`/`;` comments (Spamhaus DROP's
//! `CIDR ; SBLnnn`, FireHOL netsets), blank lines, IPv4 and IPv6 mixed.
//! Each line becomes an integer range of its family; merging them is
//! `blocklist.rs`'s job.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Key;
use crate::terminal::excerpt;

/// What one list file (or the command line) contributed, before merging.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub v4: Vec<(u32, u32)>,
    pub v6: Vec<(u128, u128)>,
    /// Lines skipped under `--skip-bad-lines`.
    pub skipped: usize,
    /// The first skipped line's error, to show as an example.
    pub first_skipped: Option<String>,
}

impl Collected {
    pub fn push(&mut self, entry: Entry) {
        match entry {
            Entry::V4(a, b) => self.v4.push((a, b)),
            Entry::V6(a, b) => self.v6.push((a, b)),
        }
    }
}

/// One list entry: an inclusive range of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    V4(u32, u32),
    V6(u128, u128),
}

impl Entry {
    /// Does this entry list `addr` (IPv4-mapped IPv6 as IPv4, as the rules
    /// see it)?
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self, addr.to_canonical()) {
            (Entry::V4(a, b), IpAddr::V4(x)) => (*a..=*b).contains(&u32::from(x)),
            (Entry::V6(a, b), IpAddr::V6(x)) => (*a..=*b).contains(&u128::from(x)),
            _ => false,
        }
    }
}

/// A line of a blocklist file that lists an address, and its entry as
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub file: String,
    pub line: usize,
    pub entry: String,
}

impl Listed {
    /// `file:line` (the tests' way to name a listing line).
    #[cfg(test)]
    fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The lines of a list file's text whose entry lists `addr`, read as
/// [`parse_list`] reads them (a line it would refuse lists nothing): what
/// the lockout guard names when a blocklist would drop the operator.
pub(crate) fn lines_listing(text: &str, origin: &str, addr: IpAddr) -> Vec<Listed> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let entry = line_entry(line)?;
            parse_entry(entry)
                .ok()
                .filter(|e| e.contains(addr))
                .map(|_| Listed {
                    file: origin.to_string(),
                    line: i + 1,
                    entry: entry.to_string(),
                })
        })
        .collect()
}

/// A line's entry: the text before a `#` or `;` comment, trimmed; `None`
/// for a blank or comment line.
fn line_entry(line: &str) -> Option<&str> {
    let entry = match line.find(['#', ';']) {
        Some(at) => &line[..at],
        None => line,
    };
    Some(entry.trim()).filter(|e| !e.is_empty())
}

/// Parse one entry: `198.51.100.7`, `203.0.113.0/24`, `2001:db8::/32`, or
/// `a-b`. A network with host bits set is refused (it is usually a typo for
/// a host or a different network).
pub(crate) fn parse_entry(text: &str) -> Result<Entry, String> {
    if let Some((a, b)) = text.split_once('-') {
        let (Ok(a), Ok(b)) = (parse_entry(a.trim()), parse_entry(b.trim())) else {
            return Err(format!(
                "`{}` is not an IP address, network or `first-last` range",
                excerpt(text)
            ));
        };
        return match (a, b) {
            (Entry::V4(a, _), Entry::V4(_, b)) if a <= b => Ok(Entry::V4(a, b)),
            (Entry::V6(a, _), Entry::V6(_, b)) if a <= b => Ok(Entry::V6(a, b)),
            _ => Err(format!(
                "`{}` is not a range (expected `first-last`, same family, first ≤ last)",
                excerpt(text)
            )),
        };
    }
    let bad = || {
        format!(
            "`{}` is not an IP address or network (expected e.g. `198.51.100.7`, `203.0.113.0/24`, `2001:db8::/32`)",
            excerpt(text)
        )
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u32>().map_err(|_| bad())?)),
        None => (text, None),
    };
    if let Ok(a) = addr.parse::<Ipv4Addr>() {
        let a = u32::from(a);
        let p = prefix.unwrap_or(32);
        if p > 32 {
            return Err(bad());
        }
        let host_bits = 32 - p;
        let end = a.block_end(host_bits);
        let start = if host_bits == 32 {
            0
        } else {
            a & !((1u32 << host_bits) - 1)
        };
        if start != a {
            return Err(host_bits_error(text, &start.show(), p));
        }
        return Ok(Entry::V4(start, end));
    }
    if let Ok(a) = addr.parse::<Ipv6Addr>() {
        let a = u128::from(a);
        let p = prefix.unwrap_or(128);
        if p > 128 {
            return Err(bad());
        }
        let host_bits = 128 - p;
        let end = a.block_end(host_bits);
        let start = if host_bits == 128 {
            0
        } else {
            a & !((1u128 << host_bits) - 1)
        };
        if start != a {
            return Err(host_bits_error(text, &start.show(), p));
        }
        return Ok(Entry::V6(start, end));
    }
    Err(bad())
}

fn host_bits_error(text: &str, start: &str, prefix: u32) -> String {
    format!(
        "`{}` has host bits set under its /{prefix} mask; did you mean `{start}/{prefix}`?",
        excerpt(text)
    )
}

/// Parse a list file's text into `into`. `origin` names the file in errors
/// (`file:line: ...`). Comments start at `#` or `;` (Spamhaus DROP's
/// `1.10.16.0/20 ; SBL256894`); blank lines are skipped. A line that is
/// not an entry is an error, or, with `skip_bad`, counted in `into`.
pub(crate) fn parse_list(
    text: &str,
    origin: &str,
    skip_bad: bool,
    into: &mut Collected,
) -> Result<(), String> {
    for (i, line) in text.lines().enumerate() {
        let Some(entry) = line_entry(line) else {
            continue;
        };
        let parsed = match entry.split_once(char::is_whitespace) {
            // FireHOL and DROP put nothing after the entry but a comment.
            Some((first, rest)) if !rest.trim().is_empty() => Err(format!(
                "`{}`: expected one address or network a line, found `{}` after `{}`",
                excerpt(entry),
                excerpt(rest.trim()),
                excerpt(first)
            )),
            _ => parse_entry(entry),
        };
        match parsed {
            Ok(e) => into.push(e),
            Err(e) => {
                let e = format!("{origin}:{}: {e}", i + 1);
                if !skip_bad {
                    return Err(e);
                }
                into.skipped += 1;
                into.first_skipped.get_or_insert(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_line_is_quoted_short_and_escaped() {
        let mut text = "198.51.100.7\n".to_string();
        text.push_str(&"\x1b[2J\u{202e}".repeat(2_000_000));
        text.push('\n');
        let e = parse_list(&text, "drop.txt", false, &mut Collected::default()).unwrap_err();
        assert!(e.starts_with("drop.txt:2: `\\x1b[2J\\u{202e}"), "{e}");
        assert!(
            e.contains("…(14000000 bytes)") && e.len() < 1_000,
            "{} bytes",
            e.len()
        );
        assert!(!e.contains('\x1b') && !e.contains('\u{202e}'), "{e}");
    }

    #[test]
    fn the_lines_listing_an_address_are_named_with_file_and_line() {
        let text = "# DROP list\n198.51.100.7\n203.0.113.0/24 ; SBL1\n\n2001:db8::/32\n\
                    203.0.113.1-203.0.113.9\nnot an address\n";
        let at = |addr: &str| {
            lines_listing(text, "drop.txt", addr.parse().unwrap())
                .into_iter()
                .map(|l| format!("{} {}", l.place(), l.entry))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            at("203.0.113.5"),
            [
                "drop.txt:3 203.0.113.0/24",
                "drop.txt:6 203.0.113.1-203.0.113.9"
            ]
        );
        assert_eq!(at("198.51.100.7"), ["drop.txt:2 198.51.100.7"]);
        assert_eq!(at("::ffff:198.51.100.7"), ["drop.txt:2 198.51.100.7"]);
        assert_eq!(at("2001:db8::5"), ["drop.txt:5 2001:db8::/32"]);
        assert!(at("192.0.2.1").is_empty());
    }
}
