//! `iptables-save` text reduced to what autofw owns (the policies of the
//! built-in chains, the `AUTOFW-*` chains and their rules, the INPUT jump),
//! and the `iptables-restore --noflush` scripts computed from it. Pure: the
//! backend ([`super`]) runs the tools, status compares with it.

use std::collections::BTreeMap;

use super::input_order;
use crate::propose::render_iptables::{
    DOCKER_USER, DOCKER_USER_JUMP, DOCKER_USER_JUMP_SAVED, JUMP_LINE,
};

const BUILTIN: [&str; 3] = ["INPUT", "FORWARD", "OUTPUT"];

/// The proposal made loadable on the live table: the INPUT jump placed
/// among the live INPUT's rules ([`input_order::with_placed_jump`]: after
/// those that cannot accept, before the first that can; left out when it is
/// already there); DOCKER-USER declared when it does not exist (declaring
/// flushes, so never when it does: its rules are the operator's); the
/// DOCKER-USER jump left out when it is there. The two jumps live in
/// different chains and are placed independently: INPUT's by the rules
/// already in INPUT, DOCKER-USER's always first in DOCKER-USER.
pub fn fit_to_live(proposal: &str, live_save: &str) -> String {
    let fitted = input_order::with_placed_jump(proposal, JUMP_LINE, live_save);
    if !fitted.lines().any(|l| l.trim() == DOCKER_USER_JUMP) {
        return fitted;
    }
    let live = FilterView::parse(live_save);
    let mut out = String::new();
    for line in fitted.lines() {
        if line.trim() == DOCKER_USER_JUMP && live.has_docker_jump {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "*filter" && !live.docker_user {
            out.push_str(&format!(":{DOCKER_USER} - [0:0]\n"));
        }
    }
    out
}

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
    /// Docker's DOCKER-USER chain exists.
    pub docker_user: bool,
    /// DOCKER-USER jumps to autofw's published-ports chain.
    pub has_docker_jump: bool,
    /// DOCKER-USER has rules other than that jump, or some chain jumps to
    /// it: it is not autofw's to delete.
    pub docker_user_in_use: bool,
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
                } else if name == DOCKER_USER {
                    view.docker_user = true;
                }
            } else if line == JUMP_LINE {
                view.has_jump = true;
            } else if line == DOCKER_USER_JUMP_SAVED {
                view.has_docker_jump = true;
            } else if line.starts_with(&format!("-A {DOCKER_USER} "))
                || line.ends_with(&format!("-j {DOCKER_USER}"))
                || line.contains(&format!("-j {DOCKER_USER} "))
            {
                view.docker_user_in_use = true;
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
        if self.has_docker_jump {
            out.push_str(DOCKER_USER_JUMP_SAVED);
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
    if live.has_docker_jump && !saved.has_docker_jump {
        lines.push(format!("-D {}", &DOCKER_USER_JUMP_SAVED[3..]));
        // Created for the jump, and nobody else uses it: gone again.
        if !saved.docker_user && !live.docker_user_in_use {
            lines.push(format!("-X {DOCKER_USER}"));
        }
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
    if saved.has_docker_jump && !live.has_docker_jump {
        if !live.docker_user {
            lines.insert(0, format!(":{DOCKER_USER} - [0:0]"));
        }
        lines.push(DOCKER_USER_JUMP.to_string());
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

    /// The policies a proposal on a host that routes (Docker) sets: FORWARD
    /// is left to Docker.
    fn input_drop() -> BTreeMap<String, String> {
        [("INPUT".to_string(), "DROP".to_string())].into()
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

    const DOCKER_LIVE: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -s 192.0.2.9/32 -j DROP\n-A DOCKER-USER -j RETURN\nCOMMIT\n";

    #[test]
    fn docker_user_is_declared_only_when_missing_and_the_jump_undone_exactly() {
        let proposal = format!(
            "*filter\n:AUTOFW-INPUT - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n-A AUTOFW-PUBLISHED -j DROP\n{DOCKER_USER_JUMP}\nCOMMIT\n"
        );
        // Docker's chain exists: never declared (that would flush the operator's rules).
        let fitted = fit_to_live(&proposal, DOCKER_LIVE);
        assert!(!fitted.contains(":DOCKER-USER"), "{fitted}");
        assert!(fitted.contains(DOCKER_USER_JUMP), "{fitted}");
        // No Docker: created.
        let fitted = fit_to_live(&proposal, FRESH);
        assert!(
            fitted.starts_with("*filter\n:DOCKER-USER - [0:0]\n"),
            "{fitted}"
        );
        // Already jumping: not a second time.
        let applied = DOCKER_LIVE.replace(
            "-A DOCKER-USER -s",
            &format!("{DOCKER_USER_JUMP_SAVED}\n-A DOCKER-USER -s"),
        );
        assert!(!fit_to_live(&proposal, &applied).contains(DOCKER_USER_JUMP));

        // Undo on Docker's host: only the jump goes; Docker's rules stay.
        let live = applied.replace(
            ":DOCKER-USER - [0:0]\n",
            ":DOCKER-USER - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n",
        ) + "";
        let script = undo_script(DOCKER_LIVE, &live, by_autofw(&input_drop())).unwrap();
        assert_eq!(
            script,
            "*filter\n-D DOCKER-USER -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n:AUTOFW-PUBLISHED - [0:0]\n-X AUTOFW-PUBLISHED\nCOMMIT\n"
        );
        // Undo where autofw created DOCKER-USER: the chain goes too.
        let live = format!(
            "*filter\n:DOCKER-USER - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n{DOCKER_USER_JUMP_SAVED}\n-A AUTOFW-PUBLISHED -j DROP\nCOMMIT\n"
        );
        let script = undo_script(FRESH, &live, by_autofw(&input_drop())).unwrap();
        assert!(script.contains("-X DOCKER-USER\n"), "{script}");
        // ... unless Docker has started since and uses it.
        let live = live.replace("COMMIT", "-A FORWARD -j DOCKER-USER\nCOMMIT");
        assert!(
            !undo_script(FRESH, &live, by_autofw(&input_drop()))
                .unwrap()
                .contains("-X DOCKER-USER")
        );
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

    #[test]
    fn on_docker_the_input_jump_is_placed_and_the_docker_user_jump_goes_first() {
        // fail2ban's drop-only chain and an old accept in INPUT, Docker's
        // DOCKER-USER with the operator's rule.
        let live = DOCKER_LIVE
            .replace(":DOCKER - [0:0]\n", ":DOCKER - [0:0]\n:f2b-sshd - [0:0]\n")
            .replace(
                "-A FORWARD -j DOCKER-USER\n",
                "-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd\n\
             -A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT\n\
             -A FORWARD -j DOCKER-USER\n-A f2b-sshd -s 203.0.113.7/32 -j DROP\n",
            );
        let proposal = format!(
            "*filter\n:INPUT DROP [0:0]\n:AUTOFW-INPUT - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n{JUMP_LINE}\n\
             -A AUTOFW-PUBLISHED -j DROP\n{DOCKER_USER_JUMP}\nCOMMIT\n"
        );
        let fitted = fit_to_live(&proposal, &live);
        assert_eq!(
            fitted,
            format!(
                "*filter\n:INPUT DROP [0:0]\n:AUTOFW-INPUT - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n\
                 -I INPUT 2 -j AUTOFW-INPUT\n-A AUTOFW-PUBLISHED -j DROP\n{DOCKER_USER_JUMP}\nCOMMIT\n"
            )
        );
        // Docker started during the window (forwarding turned on) on a host
        // where autofw set FORWARD DROP: rollback keeps Docker's FORWARD
        // DROP, takes out both jumps and leaves Docker's DOCKER-USER.
        let set = proposal_policies();
        let applied = format!(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n\
             :AUTOFW-INPUT - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n{JUMP_LINE}\n-A FORWARD -j DOCKER-USER\n\
             {DOCKER_USER_JUMP_SAVED}\n-A DOCKER-USER -j RETURN\n-A AUTOFW-PUBLISHED -j DROP\nCOMMIT\n"
        );
        let undo = PolicyUndo {
            set: Some(&set),
            forwarding_turned_on: true,
        };
        let script = undo_script(FRESH, &applied, undo).unwrap();
        assert_eq!(
            script,
            "*filter\n:INPUT ACCEPT [0:0]\n-D INPUT -j AUTOFW-INPUT\n\
             -D DOCKER-USER -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n\
             :AUTOFW-INPUT - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n-X AUTOFW-INPUT\n-X AUTOFW-PUBLISHED\nCOMMIT\n"
        );
    }
}
