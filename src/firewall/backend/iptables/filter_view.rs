//! `iptables-save` text reduced to what autofw owns (the policies of the
//! built-in chains, the `AUTOFW-*` chains and their rules, the INPUT jump;
//! in the mangle table the published-ports guard and its FORWARD jump),
//! and the `iptables-restore --noflush` scripts computed from it. Pure: the
//! backend ([`super`]) runs the tools (`iptables-save -t filter` then `-t
//! mangle`), status compares with it.

use std::collections::BTreeMap;

use super::input_order;
use crate::propose::render_iptables::{
    DOCKER_USER, DOCKER_USER_JUMP, DOCKER_USER_JUMP_SAVED, GUARD_JUMP, GUARD_JUMP_SAVED, JUMP_LINE,
    LiveFit, PUBLISHED_CHAIN,
};

const BUILTIN: [&str; 3] = ["INPUT", "FORWARD", "OUTPUT"];

/// What loading autofw's rules onto this family's live tables (`live_save`,
/// filter and mangle) must do beyond the rules' own lines, for
/// [`Script::render`](crate::propose::render_iptables::Script::render): the
/// INPUT jump placed among the live INPUT's rules ([`input_order`]: after
/// those that cannot accept, before the first that can; not added when it
/// is already there); the guard's jump from mangle's FORWARD not added when
/// it is there; where the live table still has the guard as an autofw
/// before issue 20 hooked it (a jump from Docker's DOCKER-USER into a
/// filter-table `AUTOFW-PUBLISHED`), that jump and chain taken out, Docker's
/// chain left; a guard loaded earlier that these rules do not have (the
/// host no longer routes) taken out.
pub(crate) fn live_fit(live_save: &str) -> LiveFit {
    let live = FilterView::parse(live_save);
    LiveFit {
        input_jump: input_order::placement(live_save).input_jump(),
        guard_jump_loaded: live.has_guard_jump,
        old_docker_jump: live.has_docker_jump,
        old_filter_guard: live.chains.iter().any(|c| c == PUBLISHED_CHAIN),
        mangle_chains: live.guard_chains,
    }
}

/// An `iptables-save` (filter and mangle tables) reduced to what autofw may
/// touch.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FilterView {
    /// Built-in chain → policy, of the filter table (absent table: none
    /// listed).
    pub policies: BTreeMap<String, String>,
    /// AUTOFW-* chains of the filter table, in the order declared.
    pub chains: Vec<String>,
    /// `-A AUTOFW-...` lines of the filter table, in order.
    pub rules: Vec<String>,
    pub has_jump: bool,
    /// AUTOFW-* chains of the mangle table (the published-ports guard).
    pub guard_chains: Vec<String>,
    /// `-A AUTOFW-...` lines of the mangle table, in order.
    pub guard_rules: Vec<String>,
    /// mangle's FORWARD jumps to the guard ([`GUARD_JUMP_SAVED`]).
    pub has_guard_jump: bool,
    /// Docker's DOCKER-USER chain exists.
    pub docker_user: bool,
    /// DOCKER-USER jumps to a filter-table published-ports chain: the guard
    /// as an autofw before issue 20 hooked it.
    pub has_docker_jump: bool,
    /// DOCKER-USER has rules other than that jump, or some chain jumps to
    /// it: it is not autofw's to delete.
    pub docker_user_in_use: bool,
}

impl FilterView {
    pub(crate) fn parse(save: &str) -> FilterView {
        let mut view = FilterView::default();
        let mut table = "";
        for line in save.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('*') {
                table = name;
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            match table {
                "filter" => view.parse_filter_line(line),
                "mangle" => view.parse_mangle_line(line),
                _ => {}
            }
        }
        view
    }

    fn parse_filter_line(&mut self, line: &str) {
        if let Some(decl) = line.strip_prefix(':') {
            let mut parts = decl.split_whitespace();
            let (Some(name), Some(policy)) = (parts.next(), parts.next()) else {
                return;
            };
            if BUILTIN.contains(&name) {
                self.policies.insert(name.to_string(), policy.to_string());
            } else if is_autofw_chain(name) {
                self.chains.push(name.to_string());
            } else if name == DOCKER_USER {
                self.docker_user = true;
            }
        } else if line == JUMP_LINE {
            self.has_jump = true;
        } else if line == DOCKER_USER_JUMP_SAVED {
            self.has_docker_jump = true;
        } else if line.starts_with(&format!("-A {DOCKER_USER} "))
            || line.ends_with(&format!("-j {DOCKER_USER}"))
            || line.contains(&format!("-j {DOCKER_USER} "))
        {
            self.docker_user_in_use = true;
        } else if let Some(rest) = line.strip_prefix("-A ")
            && rest.split_whitespace().next().is_some_and(is_autofw_chain)
        {
            self.rules.push(line.to_string());
        }
    }

    fn parse_mangle_line(&mut self, line: &str) {
        if let Some(decl) = line.strip_prefix(':') {
            if let Some(name) = decl.split_whitespace().next()
                && is_autofw_chain(name)
            {
                self.guard_chains.push(name.to_string());
            }
        } else if line == GUARD_JUMP_SAVED {
            self.has_guard_jump = true;
        } else if let Some(rest) = line.strip_prefix("-A ")
            && rest.split_whitespace().next().is_some_and(is_autofw_chain)
        {
            self.guard_rules.push(line.to_string());
        }
    }

    /// The lines a dry-run diff compares: policies, autofw's chains, rules
    /// and jumps, without counters; the mangle table's part after a
    /// `*mangle` line, when there is one.
    pub(crate) fn summary(&self) -> String {
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
        if self.has_guard_jump || !self.guard_chains.is_empty() || !self.guard_rules.is_empty() {
            out.push_str("*mangle\n");
            for chain in &self.guard_chains {
                out.push_str(&format!(":{chain} -\n"));
            }
            if self.has_guard_jump {
                out.push_str(GUARD_JUMP_SAVED);
                out.push('\n');
            }
            for rule in &self.guard_rules {
                out.push_str(rule);
                out.push('\n');
            }
        }
        out
    }
}

fn is_autofw_chain(name: &str) -> bool {
    name.starts_with("AUTOFW-")
}

/// What undo may change of the built-in chain policies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyUndo<'a> {
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
pub(crate) fn undo_script(saved: &str, live: &str, policies: PolicyUndo) -> Option<String> {
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
    lines.extend(chains_back(
        (&saved.chains, &saved.rules),
        (&live.chains, &live.rules),
    ));
    if saved.has_jump && !live.has_jump {
        lines.push(JUMP_LINE.to_string());
    }
    if saved.has_docker_jump && !live.has_docker_jump {
        if !live.docker_user {
            lines.insert(0, format!(":{DOCKER_USER} - [0:0]"));
        }
        lines.push(DOCKER_USER_JUMP.to_string());
    }

    let mut mangle = Vec::new();
    if live.has_guard_jump && !saved.has_guard_jump {
        mangle.push(format!("-D {}", &GUARD_JUMP_SAVED[3..]));
    }
    mangle.extend(chains_back(
        (&saved.guard_chains, &saved.guard_rules),
        (&live.guard_chains, &live.guard_rules),
    ));
    if saved.has_guard_jump && !live.has_guard_jump {
        mangle.push(GUARD_JUMP.to_string());
    }

    let mut script = String::new();
    for (table, lines) in [("filter", lines), ("mangle", mangle)] {
        if !lines.is_empty() {
            script.push_str(&format!("*{table}\n{}\nCOMMIT\n", lines.join("\n")));
        }
    }
    (!script.is_empty()).then_some(script)
}

/// The lines that make one table's autofw chains and rules `saved` again
/// from `live` (each a pair of chains and rules): nothing when they are the
/// same; otherwise every chain declared (which creates or flushes it), the
/// new ones deleted, the saved rules refilled.
fn chains_back(
    (saved_chains, saved_rules): (&[String], &[String]),
    (live_chains, live_rules): (&[String], &[String]),
) -> Vec<String> {
    if live_chains == saved_chains && live_rules == saved_rules {
        return Vec::new();
    }
    let mut all: Vec<&String> = live_chains.iter().collect();
    all.extend(saved_chains.iter().filter(|c| !live_chains.contains(c)));
    let mut lines: Vec<String> = all.iter().map(|c| format!(":{c} - [0:0]")).collect();
    lines.extend(
        live_chains
            .iter()
            .filter(|c| !saved_chains.contains(c))
            .map(|c| format!("-X {c}")),
    );
    lines.extend(saved_rules.iter().cloned());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propose::render_iptables::{Hooks, Script};

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

    /// A proposal's rules on a host that routes nothing.
    fn unguarded_proposal() -> Script {
        Script {
            filter: "*filter\n:INPUT DROP [0:0]\n:AUTOFW-INPUT - [0:0]\n".to_string(),
            guard: None,
        }
    }

    /// A proposal's rules on a host that routes: the guard in mangle.
    fn guarded_proposal() -> Script {
        Script {
            guard: Some(
                "*mangle\n:AUTOFW-PUBLISHED - [0:0]\n-A AUTOFW-PUBLISHED -j DROP\n".to_string(),
            ),
            ..unguarded_proposal()
        }
    }

    /// `script` as loaded onto `live`, without its comment lines.
    fn fit_to_live(script: &Script, live: &str) -> String {
        script
            .render(Hooks::Live(&live_fit(live)))
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// How iptables-save lists `guarded_proposal` loaded on `filter`'s host.
    fn guarded_live(filter: &str) -> String {
        let filter = filter.replace(
            "COMMIT\n",
            &format!(":AUTOFW-INPUT - [0:0]\n{JUMP_LINE}\nCOMMIT\n"),
        );
        format!(
            "{filter}*mangle\n:PREROUTING ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n\
             {GUARD_JUMP_SAVED}\n-A AUTOFW-PUBLISHED -j DROP\nCOMMIT\n"
        )
    }

    #[test]
    fn the_guard_hooks_into_mangle_forward_once_and_is_undone_exactly() {
        // Docker's host or a plain one: the same text, Docker's chains untouched.
        for live in [DOCKER_LIVE, FRESH] {
            let fitted = fit_to_live(&guarded_proposal(), live);
            assert!(!fitted.contains("DOCKER-USER"), "{fitted}");
            assert!(
                fitted.ends_with(&format!("*mangle\n:AUTOFW-PUBLISHED - [0:0]\n-A AUTOFW-PUBLISHED -j DROP\n{GUARD_JUMP}\nCOMMIT\n")),
                "{fitted}"
            );
        }
        // Already jumping (an engine restarted since, or a second apply):
        // not a second time; the chain is refilled in place.
        let applied = guarded_live(DOCKER_LIVE);
        let view = FilterView::parse(&applied);
        assert!(view.has_guard_jump && view.has_jump);
        assert_eq!(view.guard_chains, ["AUTOFW-PUBLISHED"]);
        assert_eq!(
            view.chains,
            ["AUTOFW-INPUT"],
            "mangle's chain is not filter's"
        );
        assert!(
            !view.policies.contains_key("PREROUTING"),
            "mangle's policies are not autofw's"
        );
        let again = fit_to_live(&guarded_proposal(), &applied);
        assert!(!again.contains(GUARD_JUMP), "{again}");
        assert!(
            again.contains("*mangle\n:AUTOFW-PUBLISHED - [0:0]\n"),
            "{again}"
        );

        // Undo on Docker's host: the jump and the chain go, Docker's rules stay.
        let script = undo_script(DOCKER_LIVE, &applied, by_autofw(&input_drop())).unwrap();
        assert_eq!(
            script,
            "*filter\n-D INPUT -j AUTOFW-INPUT\n:AUTOFW-INPUT - [0:0]\n-X AUTOFW-INPUT\nCOMMIT\n\
             *mangle\n-D FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n:AUTOFW-PUBLISHED - [0:0]\n-X AUTOFW-PUBLISHED\nCOMMIT\n"
        );
        // A rollback to it puts the guard back.
        let script = undo_script(&applied, DOCKER_LIVE, by_autofw(&input_drop())).unwrap();
        assert!(
            script.ends_with(&format!("*mangle\n:AUTOFW-PUBLISHED - [0:0]\n-A AUTOFW-PUBLISHED -j DROP\n{GUARD_JUMP}\nCOMMIT\n")),
            "{script}"
        );
        // The guard gone from the live table is a difference to put back.
        let missing = applied.replace(&format!("{GUARD_JUMP_SAVED}\n"), "");
        assert_ne!(
            FilterView::parse(&missing).summary(),
            FilterView::parse(&applied).summary()
        );
    }

    #[test]
    fn a_guard_the_proposal_no_longer_has_is_taken_out() {
        // The host stopped routing: the proposal has no mangle part.
        let proposal = unguarded_proposal();
        let fitted = fit_to_live(&proposal, &guarded_live(FRESH));
        assert!(
            fitted.ends_with(
                "*mangle\n-D FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n\
                 :AUTOFW-PUBLISHED - [0:0]\n-X AUTOFW-PUBLISHED\nCOMMIT\n"
            ),
            "{fitted}"
        );
        assert!(!fit_to_live(&proposal, FRESH).contains("*mangle"));
    }

    /// Where an autofw before issue 20 put the guard: a filter-table chain
    /// jumped to from Docker's DOCKER-USER (which it created on a host
    /// without Docker).
    const OLD_GUARD: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\n:AUTOFW-INPUT - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n-A INPUT -j AUTOFW-INPUT\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n-A DOCKER-USER -j RETURN\n-A AUTOFW-PUBLISHED -j DROP\nCOMMIT\n";

    #[test]
    fn the_guard_in_docker_user_moves_to_mangle_and_back_on_rollback() {
        let fitted = fit_to_live(&guarded_proposal(), OLD_GUARD);
        assert!(
            fitted.contains(
                "-D DOCKER-USER -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n\
                 :AUTOFW-PUBLISHED - [0:0]\n-X AUTOFW-PUBLISHED\nCOMMIT\n*mangle\n"
            ),
            "{fitted}"
        );
        assert!(fitted.contains(GUARD_JUMP), "{fitted}");
        assert!(!fitted.contains("-X DOCKER-USER"), "Docker's chain stays");
        // Loaded: the old place is gone, the new one there. Rolling back
        // puts the old one back as it was.
        let live = format!(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\n:AUTOFW-INPUT - [0:0]\n-A INPUT -j AUTOFW-INPUT\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n\
             *mangle\n:FORWARD ACCEPT [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n{GUARD_JUMP_SAVED}\n-A AUTOFW-PUBLISHED -j DROP\nCOMMIT\n"
        );
        let script = undo_script(OLD_GUARD, &live, by_autofw(&input_drop())).unwrap();
        assert_eq!(
            script,
            format!(
                "*filter\n:AUTOFW-INPUT - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n-A AUTOFW-PUBLISHED -j DROP\n{DOCKER_USER_JUMP}\nCOMMIT\n\
                 *mangle\n-D FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n:AUTOFW-PUBLISHED - [0:0]\n-X AUTOFW-PUBLISHED\nCOMMIT\n"
            )
        );
        // Undo of an old apply where autofw created DOCKER-USER: the chain
        // goes too, unless Docker uses it.
        let old_live = format!(
            "*filter\n:DOCKER-USER - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n{DOCKER_USER_JUMP_SAVED}\n-A AUTOFW-PUBLISHED -j DROP\nCOMMIT\n"
        );
        let script = undo_script(FRESH, &old_live, by_autofw(&input_drop())).unwrap();
        assert!(script.contains("-X DOCKER-USER\n"), "{script}");
        let used = old_live.replace("COMMIT", "-A FORWARD -j DOCKER-USER\nCOMMIT");
        assert!(
            !undo_script(FRESH, &used, by_autofw(&input_drop()))
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
    fn on_docker_the_input_jump_is_placed_and_the_guard_jump_goes_into_mangle() {
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
        let fitted = fit_to_live(&guarded_proposal(), &live);
        assert_eq!(
            fitted,
            format!(
                "*filter\n:INPUT DROP [0:0]\n:AUTOFW-INPUT - [0:0]\n-I INPUT 2 -j AUTOFW-INPUT\nCOMMIT\n\
                 *mangle\n:AUTOFW-PUBLISHED - [0:0]\n-A AUTOFW-PUBLISHED -j DROP\n{GUARD_JUMP}\nCOMMIT\n"
            )
        );
        // Docker started during the window (forwarding turned on) on a host
        // where autofw set FORWARD DROP: rollback keeps Docker's FORWARD
        // DROP, takes out both jumps and leaves Docker's DOCKER-USER.
        let set = proposal_policies();
        let applied = format!(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n\
             :AUTOFW-INPUT - [0:0]\n{JUMP_LINE}\n-A FORWARD -j DOCKER-USER\n\
             -A DOCKER-USER -j RETURN\nCOMMIT\n\
             *mangle\n:AUTOFW-PUBLISHED - [0:0]\n{GUARD_JUMP_SAVED}\n-A AUTOFW-PUBLISHED -j DROP\nCOMMIT\n"
        );
        let undo = PolicyUndo {
            set: Some(&set),
            forwarding_turned_on: true,
        };
        let script = undo_script(FRESH, &applied, undo).unwrap();
        assert_eq!(
            script,
            "*filter\n:INPUT ACCEPT [0:0]\n-D INPUT -j AUTOFW-INPUT\n\
             :AUTOFW-INPUT - [0:0]\n-X AUTOFW-INPUT\nCOMMIT\n\
             *mangle\n-D FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n\
             :AUTOFW-PUBLISHED - [0:0]\n-X AUTOFW-PUBLISHED\nCOMMIT\n"
        );
    }
}
