//! Where autofw's jump goes among other tools' INPUT rules, and which of
//! their rules still accept before it. Pure: it reads `iptables-save -t
//! filter` text.
//!
//! A packet that an earlier INPUT rule accepts never reaches autofw's chain,
//! so a left-over `-A INPUT -p tcp --dport 3306 -j ACCEPT` would keep a port
//! open that autofw reports closed. But fail2ban inserts its `f2b-*` jumps at
//! the top of INPUT, and they must keep banning. So the jump goes after the
//! rules that cannot accept anything (drops, rejects, logs, returns, jumps
//! into chains that only do those) and before the first rule that can.

use std::collections::{BTreeMap, BTreeSet};

use crate::human::count;
use crate::iptables_save::words;
use crate::propose::render_iptables::InputJump;
use crate::terminal::escape_controls;

/// autofw's chain, and the rule that hooks it into INPUT.
const AUTOFW_CHAIN: &str = "AUTOFW-INPUT";

/// Targets that never accept a packet: they drop it, or note it and let the
/// next rule decide. Any target not listed here (ACCEPT, NFQUEUE, a target
/// from an extension we do not know) is taken to be able to accept.
const CANNOT_ACCEPT: &[&str] = &[
    "DROP",
    "REJECT",
    "RETURN",
    "LOG",
    "NFLOG",
    "ULOG",
    "AUDIT",
    "MARK",
    "CONNMARK",
    "SECMARK",
    "CONNSECMARK",
    "CT",
    "NOTRACK",
    "TRACE",
    "SET",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "TTL",
    "HL",
    "TCPMSS",
    "CHECKSUM",
    "IDLETIMER",
    "LED",
];

/// One `-A CHAIN ...` line of an `iptables-save`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SavedRule {
    line: String,
    /// The `-j`/`-g` target; `None` for a rule that only counts.
    target: Option<String>,
}

/// The filter table of an `iptables-save`: every chain's rules, in order.
#[derive(Debug, Default)]
struct Filter {
    /// User-defined chains (declared `:NAME - [0:0]`).
    user_chains: BTreeSet<String>,
    rules: BTreeMap<String, Vec<SavedRule>>,
}

impl Filter {
    fn parse(save: &str) -> Filter {
        let mut filter = Filter::default();
        let mut in_filter = false;
        for line in save.lines().map(str::trim) {
            if line.starts_with('*') {
                in_filter = line == "*filter";
                continue;
            }
            if !in_filter {
                continue;
            }
            if let Some(decl) = line.strip_prefix(':') {
                let mut parts = decl.split_whitespace();
                if let (Some(name), Some("-")) = (parts.next(), parts.next()) {
                    filter.user_chains.insert(name.to_string());
                }
                continue;
            }
            let words = words(line);
            if words.first().map(String::as_str) != Some("-A") || words.len() < 2 {
                continue;
            }
            let target = words
                .windows(2)
                .find(|w| matches!(w[0].as_str(), "-j" | "--jump" | "-g" | "--goto"))
                .map(|w| w[1].clone());
            filter
                .rules
                .entry(words[1].clone())
                .or_default()
                .push(SavedRule {
                    line: line.to_string(),
                    target,
                });
        }
        filter
    }

    /// INPUT's rules, in order.
    fn input(&self) -> &[SavedRule] {
        self.rules.get("INPUT").map_or(&[], Vec::as_slice)
    }

    /// Can a packet be accepted by this rule (directly, or in the chains it
    /// jumps to)? `seen` breaks loops (iptables refuses them anyway).
    fn can_accept(&self, rule: &SavedRule, seen: &mut BTreeSet<String>) -> bool {
        let Some(target) = &rule.target else {
            return false;
        };
        if CANNOT_ACCEPT.contains(&target.as_str()) {
            return false;
        }
        if !self.user_chains.contains(target) {
            // ACCEPT, or a target that may hand the packet on (NFQUEUE).
            return true;
        }
        if !seen.insert(target.clone()) {
            return false;
        }
        self.rules
            .get(target)
            .into_iter()
            .flatten()
            .any(|r| self.can_accept(r, seen))
    }

    fn accepts(&self, rule: &SavedRule) -> bool {
        self.can_accept(rule, &mut BTreeSet::new())
    }
}

/// Is this INPUT rule autofw's jump?
fn is_autofw_jump(rule: &SavedRule) -> bool {
    rule.target.as_deref() == Some(AUTOFW_CHAIN)
}

/// How autofw's jump is to be placed in a live INPUT chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// 1-based position in INPUT (counting without autofw's own jump):
    /// `iptables -I INPUT {position}`.
    pub position: usize,
    /// The rules that stay before the jump: they cannot accept.
    pub after: Vec<String>,
    /// The first rule that can accept, which now comes after the jump.
    pub before: Option<String>,
    /// The live INPUT already has exactly one jump, at that position.
    pub already_there: bool,
    /// How many jumps the live INPUT has (to delete when misplaced).
    pub existing_jumps: usize,
}

impl Placement {
    /// What a load does about the jump: nothing when it is in place, else
    /// delete the misplaced ones and insert it at the position.
    pub(crate) fn input_jump(&self) -> InputJump {
        if self.already_there {
            InputJump::Placed
        } else {
            InputJump::Insert {
                position: self.position,
                misplaced: self.existing_jumps,
            }
        }
    }
}

/// Where the jump goes in the INPUT chain of `live_save`.
pub(crate) fn placement(live_save: &str) -> Placement {
    let filter = Filter::parse(live_save);
    let mut others = Vec::new();
    let mut jump_at = Vec::new();
    for rule in filter.input() {
        if is_autofw_jump(rule) {
            jump_at.push(others.len());
        } else {
            others.push(rule);
        }
    }
    let first_accepting = others.iter().position(|r| filter.accepts(r));
    let index = first_accepting.unwrap_or(others.len());
    Placement {
        position: index + 1,
        after: others[..index].iter().map(|r| r.line.clone()).collect(),
        before: first_accepting.map(|i| others[i].line.clone()),
        already_there: jump_at == [index],
        existing_jumps: jump_at.len(),
    }
}

/// The INPUT rules before autofw's jump that can accept a packet, which then
/// never reaches autofw's rules. Empty when there is no jump (nothing of
/// autofw's is loaded to bypass).
pub(crate) fn accepts_before_jump(live_save: &str) -> Vec<AcceptBefore> {
    let filter = Filter::parse(live_save);
    let input = filter.input();
    let Some(jump) = input.iter().position(is_autofw_jump) else {
        return Vec::new();
    };
    input[..jump]
        .iter()
        .enumerate()
        .filter(|(_, r)| filter.accepts(r))
        .map(|(i, r)| AcceptBefore {
            number: i + 1,
            rule: r.line.clone(),
        })
        .collect()
}

/// A foreign INPUT rule that accepts before autofw's chain is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AcceptBefore {
    /// Its 1-based rule number in INPUT (`iptables -D INPUT {number}`).
    pub number: usize,
    /// As `iptables-save` lists it.
    pub rule: String,
}

impl Placement {
    /// What apply's plan says about where the jump goes in `family`'s INPUT
    /// (`iptables`, `ip6tables`); `None` when INPUT holds no other rule.
    pub(crate) fn describe(&self, family: &str) -> Option<String> {
        if self.after.is_empty() && self.before.is_none() {
            return None;
        }
        let mut out = format!(
            "{family} INPUT: autofw's jump goes at position {}",
            self.position
        );
        if !self.after.is_empty() {
            out.push_str(&format!(
                ", after {} that only drop, reject, log or return (they keep deciding first): {}",
                count(self.after.len(), "rule", "rules"),
                self.after
                    .iter()
                    .map(|r| format!("`{}`", escape_controls(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(rule) = &self.before {
            out.push_str(&format!(
                ", before `{}`: autofw's chain decides every packet it sees, so that rule \
                 and the ones after it no longer accept anything autofw drops",
                escape_controls(rule)
            ));
        }
        Some(out)
    }
}

impl AcceptBefore {
    /// The warning apply prints and the message status gives, for `family`.
    pub(crate) fn describe(&self, family: &str) -> String {
        format!(
            "{family} INPUT rule {} (`{}`) accepts before autofw's chain sees the packet: \
             what it matches stays open whatever autofw's rules say",
            self.number,
            escape_controls(&self.rule)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUMP: &str = "-A INPUT -j AUTOFW-INPUT";

    fn save(chains: &str, rules: &str) -> String {
        format!(
            "# Generated by iptables-save v1.8.9 (nf_tables)\n*filter\n:INPUT ACCEPT [0:0]\n\
             :FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{chains}{rules}COMMIT\n"
        )
    }

    const F2B: &str = ":f2b-sshd - [0:0]\n";
    const F2B_RULES: &str = "-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd\n\
                             -A f2b-sshd -s 203.0.113.7/32 -j REJECT --reject-with icmp-port-unreachable\n\
                             -A f2b-sshd -j RETURN\n";

    #[test]
    fn on_an_empty_input_the_jump_goes_first() {
        let p = placement(&save("", ""));
        assert_eq!((p.position, p.before, p.already_there), (1, None, false));
        assert_eq!(placement("").position, 1);
    }

    #[test]
    fn the_jump_goes_after_fail2ban_and_before_an_earlier_accept() {
        let live = save(
            F2B,
            &format!("{F2B_RULES}-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT\n"),
        );
        let p = placement(&live);
        assert_eq!(p.position, 2);
        assert_eq!(
            p.after,
            ["-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd"]
        );
        assert_eq!(
            p.before.as_deref(),
            Some("-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT")
        );
    }

    #[test]
    fn a_chain_that_can_accept_is_not_passed_and_drops_and_logs_are() {
        let live = save(
            ":ufw-before-input - [0:0]\n:inner - [0:0]\n",
            "-A INPUT -s 198.51.100.9/32 -j DROP\n-A INPUT -j LOG\n-A INPUT -m comment --comment \"x -j ACCEPT\" -j DROP\n\
             -A INPUT -j ufw-before-input\n-A ufw-before-input -j inner\n-A inner -i lo -j ACCEPT\n",
        );
        let p = placement(&live);
        assert_eq!(p.position, 4, "{p:?}");
        assert_eq!(p.before.as_deref(), Some("-A INPUT -j ufw-before-input"));
    }

    #[test]
    fn an_unknown_target_may_accept() {
        let live = save("", "-A INPUT -p tcp --dport 80 -j NFQUEUE --queue-num 1\n");
        assert_eq!(placement(&live).position, 1);
    }

    #[test]
    fn a_jump_in_place_is_kept_and_a_misplaced_one_moved() {
        let in_place = save(F2B, &format!("{F2B_RULES}{JUMP}\n-A INPUT -j ACCEPT\n"));
        assert!(placement(&in_place).already_there);
        assert_eq!(placement(&in_place).input_jump(), InputJump::Placed);
        let behind = save(F2B, &format!("{F2B_RULES}-A INPUT -j ACCEPT\n{JUMP}\n"));
        assert_eq!(
            placement(&behind).input_jump(),
            InputJump::Insert {
                position: 2,
                misplaced: 1
            }
        );
        assert_eq!(
            placement("").input_jump(),
            InputJump::Insert {
                position: 1,
                misplaced: 0
            }
        );
    }

    #[test]
    fn accepts_before_the_jump_are_found_with_their_numbers() {
        let live = save(
            F2B,
            &format!(
                "{F2B_RULES}-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT\n{JUMP}\n-A INPUT -j ACCEPT\n"
            ),
        );
        assert_eq!(
            accepts_before_jump(&live),
            [AcceptBefore {
                number: 2,
                rule: "-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT".to_string()
            }]
        );
        let fine = save(F2B, &format!("{F2B_RULES}{JUMP}\n-A INPUT -j ACCEPT\n"));
        assert!(accepts_before_jump(&fine).is_empty());
        // No jump: nothing of autofw's to bypass.
        assert!(accepts_before_jump(&save("", "-A INPUT -j ACCEPT\n")).is_empty());
    }

    #[test]
    fn quoted_words_keep_their_spaces() {
        assert_eq!(
            words(r#"-A INPUT -m comment --comment "a \"b\" -j c" -j DROP"#),
            [
                "-A",
                "INPUT",
                "-m",
                "comment",
                "--comment",
                "a \"b\" -j c",
                "-j",
                "DROP"
            ]
        );
    }
}
