//! `iptables-save` text reduced to what autofw owns (the policies of the
//! built-in chains, the `AUTOFW-*` chains and their rules, the INPUT jump),
//! and the `iptables-restore --noflush` scripts computed from it. Pure: the
//! backend ([`super::iptables`]) runs the tools, status compares with it.

use std::collections::BTreeMap;

use crate::propose::render_iptables::JUMP_LINE;

const BUILTIN: [&str; 3] = ["INPUT", "FORWARD", "OUTPUT"];

/// The filter table of an `iptables-save`, reduced to what autofw may touch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FilterView {
    /// Built-in chain → policy (absent table: none listed).
    pub policies: BTreeMap<String, String>,
    /// AUTOFW-* chains, in the order declared.
    pub chains: Vec<String>,
    /// `-A AUTOFW-...` lines, in order.
    pub rules: Vec<String>,
    pub has_jump: bool,
}

impl FilterView {
    pub fn parse(save: &str) -> FilterView {
        let mut view = FilterView::default();
        let mut in_filter = false;
        for line in save.lines().map(str::trim) {
            if line.starts_with('*') {
                in_filter = line == "*filter";
                continue;
            }
            if !in_filter || line.starts_with('#') {
                continue;
            }
            if let Some(decl) = line.strip_prefix(':') {
                let mut parts = decl.split_whitespace();
                let (Some(name), Some(policy)) = (parts.next(), parts.next()) else {
                    continue;
                };
                if BUILTIN.contains(&name) {
                    view.policies.insert(name.to_string(), policy.to_string());
                } else if is_autofw_chain(name) {
                    view.chains.push(name.to_string());
                }
            } else if line == JUMP_LINE {
                view.has_jump = true;
            } else if let Some(rest) = line.strip_prefix("-A ")
                && rest.split_whitespace().next().is_some_and(is_autofw_chain)
            {
                view.rules.push(line.to_string());
            }
        }
        view
    }

    /// The lines a dry-run diff compares: policies, autofw's chains, rules
    /// and jump, without counters.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (chain, policy) in &self.policies {
            out.push_str(&format!(":{chain} {policy}\n"));
        }
        for chain in &self.chains {
            out.push_str(&format!(":{chain} -\n"));
        }
        if self.has_jump {
            out.push_str(JUMP_LINE);
            out.push('\n');
        }
        for rule in &self.rules {
            out.push_str(rule);
            out.push('\n');
        }
        out
    }
}

fn is_autofw_chain(name: &str) -> bool {
    name.starts_with("AUTOFW-")
}

/// What undo may change of the built-in chain policies.
#[derive(Debug, Clone, Copy)]
pub struct PolicyUndo<'a> {
    /// The policies the loaded rules set (`None`: unknown, put back all).
    pub set: Option<&'a BTreeMap<String, String>>,
    /// This family's IP forwarding was off at the apply and is on now:
    /// something (Docker starting) made the host route during the window,
    /// and set FORWARD to drop (or counts on it). A FORWARD DROP is then
    /// kept, even one autofw set: the two cannot be told apart, and putting
    /// ACCEPT back would make every container routable.
    pub forwarding_turned_on: bool,
}

/// `iptables-restore --noflush` input that turns `live` back into `saved`
/// for what autofw owns, or `None` when nothing differs. Pure, for tests.
///
/// A built-in chain's policy is put back only when the apply set it (it
/// differs from the saved one) and it is still what the apply set: Docker
/// sets `FORWARD DROP` when it starts, and putting back ACCEPT over it
/// would make every container routable.
pub fn undo_script(saved: &str, live: &str, policies: PolicyUndo) -> Option<String> {
    let saved = FilterView::parse(saved);
    let live = FilterView::parse(live);
    let mut lines = Vec::new();
    for chain in BUILTIN {
        let before = saved.policies.get(chain).map_or("ACCEPT", String::as_str);
        let Some(now) = live.policies.get(chain) else {
            continue;
        };
        let autofws = match policies.set {
            None => true,
            Some(set) => set.get(chain) == Some(now),
        };
        let keep_forward_drop =
            chain == "FORWARD" && now == "DROP" && policies.forwarding_turned_on;
        if now != before && autofws && !keep_forward_drop {
            lines.push(format!(":{chain} {before} [0:0]"));
        }
    }
    if live.has_jump && !saved.has_jump {
        lines.push(format!("-D {}", &JUMP_LINE[3..]));
    }
    let mut all: Vec<&String> = live.chains.iter().collect();
    all.extend(saved.chains.iter().filter(|c| !live.chains.contains(c)));
    let unchanged = live.chains == saved.chains && live.rules == saved.rules;
    if !unchanged {
        // Declaring a chain creates or flushes it; then drop the new ones
        // and refill the old ones.
        lines.extend(all.iter().map(|c| format!(":{c} - [0:0]")));
        lines.extend(
            live.chains
                .iter()
                .filter(|c| !saved.chains.contains(c))
                .map(|c| format!("-X {c}")),
        );
        lines.extend(saved.rules.iter().cloned());
    }
    if saved.has_jump && !live.has_jump {
        lines.push(JUMP_LINE.to_string());
    }
    if lines.is_empty() {
        return None;
    }
    Some(format!("*filter\n{}\nCOMMIT\n", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: &str = "";
    const APPLIED: &str = "# Generated by iptables-save\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:AUTOFW-INPUT - [0:0]\n:f2b-sshd - [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j f2b-sshd\n-A INPUT -j AUTOFW-INPUT\n-A AUTOFW-INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A f2b-sshd -j RETURN\nCOMMIT\n";

    /// The policies a proposal on a host that routes nothing sets.
    fn proposal_policies() -> BTreeMap<String, String> {
        FilterView::parse(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
        )
        .policies
    }

    fn by_autofw(set: &BTreeMap<String, String>) -> PolicyUndo<'_> {
        PolicyUndo {
            set: Some(set),
            forwarding_turned_on: false,
        }
    }

    #[test]
    fn undo_on_a_fresh_host_removes_everything_autofw_wrote() {
        let set = proposal_policies();
        assert_eq!(
            undo_script(FRESH, APPLIED, by_autofw(&set)).unwrap(),
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n-D INPUT -j AUTOFW-INPUT\n:AUTOFW-INPUT - [0:0]\n-X AUTOFW-INPUT\nCOMMIT\n"
        );
    }

    #[test]
    fn undo_never_mentions_foreign_chains() {
        let set = proposal_policies();
        let saved = "*filter\n:INPUT ACCEPT [0:0]\n:f2b-sshd - [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j f2b-sshd\n-A f2b-sshd -j RETURN\nCOMMIT\n";
        let script = undo_script(saved, APPLIED, by_autofw(&set)).unwrap();
        assert!(!script.contains("f2b"), "{script}");
    }

    #[test]
    fn undo_refills_a_previous_autofw_chain() {
        let set = proposal_policies();
        let saved = "*filter\n:INPUT DROP [0:0]\n:AUTOFW-INPUT - [0:0]\n-A INPUT -j AUTOFW-INPUT\n-A AUTOFW-INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n";
        let script = undo_script(saved, APPLIED, by_autofw(&set)).unwrap();
        assert_eq!(
            script,
            "*filter\n:FORWARD ACCEPT [0:0]\n:AUTOFW-INPUT - [0:0]\n-A AUTOFW-INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n"
        );
        assert_eq!(undo_script(APPLIED, APPLIED, by_autofw(&set)), None);
    }

    #[test]
    fn undo_leaves_policies_autofw_did_not_set_or_that_changed_since() {
        // A host that routes: the proposal leaves FORWARD alone; Docker sets
        // FORWARD DROP during the window.
        let input_only: BTreeMap<String, String> =
            [("INPUT".to_string(), "DROP".to_string())].into();
        let script = undo_script(FRESH, APPLIED, by_autofw(&input_only)).unwrap();
        assert!(script.contains(":INPUT ACCEPT"), "{script}");
        assert!(!script.contains("FORWARD"), "{script}");
        // autofw set INPUT DROP, then someone set INPUT ACCEPT: theirs stays.
        let set = proposal_policies();
        let reopened = APPLIED.replace(":INPUT DROP", ":INPUT ACCEPT");
        let script = undo_script(FRESH, &reopened, by_autofw(&set)).unwrap();
        assert!(!script.contains(":INPUT"), "{script}");
        // An old snapshot that did not record them: every policy goes back.
        let all = PolicyUndo {
            set: None,
            forwarding_turned_on: false,
        };
        let script = undo_script(FRESH, APPLIED, all).unwrap();
        assert!(script.contains(":FORWARD ACCEPT"), "{script}");
    }

    #[test]
    fn forward_drop_stays_when_the_host_started_routing_in_the_window() {
        let set = proposal_policies();
        let docker_started = PolicyUndo {
            set: Some(&set),
            forwarding_turned_on: true,
        };
        let script = undo_script(FRESH, APPLIED, docker_started).unwrap();
        assert!(script.contains(":INPUT ACCEPT"), "{script}");
        assert!(!script.contains("FORWARD"), "{script}");
    }
}
