//! The words of an `iptables-save` line, as the shell would split them,
//! shared by the INPUT jump's placement (`firewall::backend::iptables::input_order`) and the
//! DNAT reader (`scan::forwarded::iptables`).

/// Split one `iptables-save` line into words, as the shell would: quoted
/// comments (`--comment "a \"b\""`) stay one word.
pub(crate) fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}
