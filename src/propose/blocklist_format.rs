//! Blocklist files as people download them, pure: one address, network or
//! `first-last` range a line, `#`/`;` comments (Spamhaus DROP's
//! `CIDR ; SBLnnn`, FireHOL netsets), blank lines, IPv4 and IPv6 mixed.
//! Each line becomes an integer range of its family; merging them is
//! `blocklist.rs`'s job.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::blocklist::Key;
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

/// Parse one entry: `198.51.100.7`, `203.0.113.0/24`, `2001:db8::/32`, or
/// `a-b`. A network with host bits set is refused (it is usually a typo for
/// a host or a different network).
pub fn parse_entry(text: &str) -> Result<Entry, String> {
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
pub fn parse_list(
    text: &str,
    origin: &str,
    skip_bad: bool,
    into: &mut Collected,
) -> Result<(), String> {
    for (i, line) in text.lines().enumerate() {
        let entry = match line.find(['#', ';']) {
            Some(at) => &line[..at],
            None => line,
        };
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
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
