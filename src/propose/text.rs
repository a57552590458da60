//! Putting words into a ruleset safely. Process and service names come from
//! the scan (a saved file, or whatever a process called itself), so before any
//! of it lands in a comment or a quoted string it is cut to printable ASCII:
//! a newline in a process name must not become a rule.

use crate::terminal::escape_controls;

/// Printable ASCII only; anything else becomes `?`.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A double-quoted string for nft or iptables: sanitized, quotes and
/// backslashes removed, at most `max` bytes (nft comments: 128 with the NUL).
pub(crate) fn quoted(text: &str, max: usize) -> String {
    let mut clean: String = sanitize(text)
        .chars()
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    clean.truncate(max);
    format!("\"{clean}\"")
}

/// `text` as `# ` comment lines under `indent`, wrapped near 80 columns.
pub(crate) fn comment_lines(text: &str, indent: &str) -> String {
    const WIDTH: usize = 78;
    let mut out = String::new();
    let mut line = String::new();
    // A list item (`- ...`) continues under its text, not under the dash.
    let hang = if text.starts_with("- ") { "  " } else { "" };
    // Control characters shown as escapes (`\x1b`) rather than `?`: a
    // reader sees what the process really called itself.
    for word in sanitize(&escape_controls(text))
        .split(' ')
        .filter(|w| !w.is_empty())
    {
        if !line.is_empty() && indent.len() + 2 + line.len() + 1 + word.len() > WIDTH {
            out.push_str(&format!("{indent}# {line}\n"));
            line.clear();
            line.push_str(hang);
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.is_empty() {
        out.push_str(&format!("{indent}#\n"));
    } else {
        out.push_str(&format!("{indent}# {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_cannot_break_out() {
        let evil = "x\"; flush ruleset\nadd rule\\";
        assert_eq!(quoted(evil, 127), "\"x; flush ruleset?add rule\"");
        let c = comment_lines(evil, "\t");
        assert_eq!(c.lines().count(), 1, "{c}");
        assert!(c.starts_with("\t# "));
        assert_eq!(
            comment_lines("nginx \x1b[2J\x1b]0;x\x07", ""),
            "# nginx \\x1b[2J\\x1b]0;x\\x07\n"
        );
    }

    #[test]
    fn long_text_wraps_and_quotes_are_bounded() {
        let long = "word ".repeat(40);
        let c = comment_lines(&long, "  ");
        assert!(
            c.lines().all(|l| l.len() <= 78 && l.starts_with("  # ")),
            "{c}"
        );
        assert_eq!(quoted(&"a".repeat(300), 127).len(), 129);
    }
}
