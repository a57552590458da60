//! Text from the host, made safe to show on a terminal. Process names (any
//! process can call itself anything with `prctl(PR_SET_NAME)`), interface
//! names, comments in other tools' rules: none of it is autofw's, and an
//! escape sequence in it would rewrite the operator's screen (hide a line,
//! fake a prompt, retitle the window). Pure.

use std::borrow::Cow;

/// `text` with every control character written as an escape (`\x1b`, `\n`,
/// `\u{202e}`), so that it shows as what it is and cannot act on the
/// terminal. Covers C0 and C1 controls, DEL, and the Unicode bidi and
/// invisible format characters that reorder or hide text. Idempotent:
/// backslashes are left as they are, so escaping twice changes nothing.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// The same for a listing of several lines (a ruleset, a diff): newlines
/// and tabs are kept as they are; every other control is escaped.
pub fn escape_listing(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
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
    fn listings_keep_their_lines_and_tabs() {
        assert_eq!(
            escape_listing("\t\ttcp dport 22 accept comment \"\x1b[2J\"\n"),
            "\t\ttcp dport 22 accept comment \"\\x1b[2J\"\n"
        );
    }
}
