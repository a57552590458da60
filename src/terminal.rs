//! Text from the host, made safe to show on a terminal. Process names (any
//! process can call itself anything with `prctl(PR_SET_NAME)`), interface
//! names, comments in other tools' rules: none of it is autofw's, and an
//! escape sequence in it would rewrite the operator's screen (hide a line,
//! fake a prompt, retitle the window). Input files and arguments echoed
//! in a message go the same way, cut to a short excerpt ([`excerpt`]): a
//! 10 MB line is not a message. Pure.

use std::borrow::Cow;
use std::path::Path;

/// The most characters of input a message quotes.
pub(crate) const EXCERPT_CHARS: usize = 80;

/// `text` with every control character written as an escape (`\x1b`, `\n`,
/// `\u{202e}`), so that it shows as what it is and cannot act on the
/// terminal. Covers C0 and C1 controls, DEL, and the Unicode bidi and
/// invisible format characters that reorder or hide text. Idempotent:
/// backslashes are left as they are, so escaping twice changes nothing.
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// The same for a listing of several lines (a ruleset, a diff): newlines
/// and tabs are kept as they are; every other control is escaped.
pub(crate) fn escape_listing(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// Input quoted in a message (a line of a file, a value, a name): escaped
/// as [`escape_controls`] does, and cut after [`EXCERPT_CHARS`] characters
/// with the whole length said (`…(10485760 bytes)`), so that a hostile file
/// can neither act on the terminal nor flood it.
pub(crate) fn excerpt(text: &str) -> String {
    excerpt_of(text, EXCERPT_CHARS)
}

/// [`excerpt`] with another length, for a parser's own message, which
/// quotes the input inside words worth keeping.
pub(crate) fn excerpt_of(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => escape_controls(text).into_owned(),
        Some((cut, _)) => format!("{}…({} bytes)", escape_controls(&text[..cut]), text.len()),
    }
}

/// A path as a message shows it: escaped (a file name may hold anything but
/// `/` and NUL), not cut, as the operator needs all of it to find the file.
pub(crate) fn path(path: &Path) -> String {
    escape_controls(&path.to_string_lossy()).into_owned()
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_escape(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if keep(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width spaces and marks
            | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let name = "nginx: worker, pid 12 – ünïcode";
        assert!(matches!(escape_controls(name), Cow::Borrowed(n) if n == name));
    }

    #[test]
    fn escapes_cannot_reach_the_terminal() {
        let evil = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\r\nfake\u{9b}\u{202e}txt\x7f";
        let shown = escape_controls(evil);
        assert_eq!(
            shown,
            "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred\\r\\nfake\\x9b\\u{202e}txt\\x7f"
        );
        assert!(!shown.chars().any(needs_escape));
        assert_eq!(escape_controls(&shown), shown, "idempotent");
    }

    #[test]
    fn excerpts_are_escaped_and_cut_with_the_length_said() {
        assert_eq!(excerpt("198.51.100.7"), "198.51.100.7");
        assert_eq!(
            excerpt("a\0b\x1bc\rd\u{202e}e\u{feff}"),
            "a\\x00b\\x1bc\\rd\\u{202e}e\\u{feff}"
        );
        let long = "é".repeat(10_000_000 / 2);
        let shown = excerpt(&long);
        assert_eq!(
            shown,
            format!("{}…(10000000 bytes)", "é".repeat(EXCERPT_CHARS))
        );
        // Escapes expand, but only from the cut excerpt: bounded.
        let evil = "\u{202e}".repeat(1_000_000);
        assert!(
            excerpt(&evil).len() < EXCERPT_CHARS * 9 + 30,
            "{}",
            excerpt(&evil).len()
        );
        assert!(!excerpt(&evil).chars().any(needs_escape));
        assert_eq!(excerpt_of("abcdef", 3), "abc…(6 bytes)");
        assert_eq!(
            path(Path::new("/tmp/\x1b[2Jlist\n.txt")),
            "/tmp/\\x1b[2Jlist\\n.txt"
        );
    }

    #[test]
    fn listings_keep_their_lines_and_tabs() {
        assert_eq!(
            escape_listing("\t\ttcp dport 22 accept comment \"\x1b[2J\"\n"),
            "\t\ttcp dport 22 accept comment \"\\x1b[2J\"\n"
        );
    }
}
