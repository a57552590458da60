//! The other packet filters on a host, as read from it, and what they are
//! called when they drop something. Pure: it takes the listings the edge
//! read (`nft -s list ruleset`, `iptables-nft-save`, `iptables-legacy-save`).
//!
//! Every base chain on the input hook gets a say, whatever table it is in,
//! and a drop anywhere is final. So besides autofw's table there can be: a
//! native nft table (`/etc/nftables.conf`, firewalld), the tables of
//! iptables-nft (ufw, Docker, fail2ban, an old script), and iptables-legacy
//! tables, which filter packets too but are invisible to `nft list ruleset`.

use serde::{Deserialize, Serialize};

use crate::human::count;
use crate::propose::render_iptables::{DOCKER_USER_JUMP_SAVED, GUARD_JUMP_SAVED};

/// What the edge read of the live filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LiveFilters {
    /// `nft -s list ruleset`; `None` without nft.
    pub nft_ruleset: Option<String>,
    /// `iptables-nft-save` and `ip6tables-nft-save` (every table); empty
    /// when iptables-nft is not installed.
    pub iptables_nft: [String; 2],
    /// `iptables-legacy-save` and `ip6tables-legacy-save`, of the tables
    /// listed in `/proc/net/ip_tables_names` / `ip6_tables_names`.
    pub legacy: [String; 2],
    /// The legacy tables the kernel lists, when `iptables-legacy-save` is
    /// not installed to show their rules.
    pub legacy_unreadable: Vec<String>,
    /// `ipset save`: the sets iptables rules may match.
    pub ipsets: Option<String>,
}

/// One filter that is not autofw's, as the judge loads it and as
/// messages name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Foreign {
    /// A native nft table (`family name`), its listing.
    NftTable {
        family: String,
        name: String,
        text: String,
    },
    /// iptables-nft's tables, both families.
    IptablesNft { v4: String, v6: String },
    /// iptables-legacy's tables, both families.
    IptablesLegacy { v4: String, v6: String },
}

impl Foreign {
    /// How a message names this filter's drop of a `v6` packet:
    /// "iptables-nft's filter INPUT (policy drop)".
    pub(crate) fn dropper(&self, v6: bool) -> String {
        match self {
            Foreign::NftTable { family, name, text } => {
                let chains = input_chains(text);
                let chain = match chains.as_slice() {
                    [] => String::new(),
                    [(chain, policy)] => format!(
                        " chain {chain}{}",
                        if policy == "drop" {
                            " (policy drop)"
                        } else {
                            ""
                        }
                    ),
                    many => format!(
                        " chains {}",
                        many.iter()
                            .map(|(c, _)| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                format!("nftables' table {family} {name}{chain}")
            }
            Foreign::IptablesNft { v4, v6: v6_text } => {
                let tool = if v6 { "ip6tables-nft" } else { "iptables-nft" };
                format!("{tool}'s {}", iptables_input(if v6 { v6_text } else { v4 }))
            }
            Foreign::IptablesLegacy { v4, v6: v6_text } => {
                let tool = if v6 {
                    "ip6tables-legacy"
                } else {
                    "iptables-legacy"
                };
                format!("{tool}'s {}", iptables_input(if v6 { v6_text } else { v4 }))
            }
        }
    }

    /// How to resolve a drop by this filter of what autofw opens.
    pub(crate) fn resolution(&self, what: &str) -> String {
        match self {
            Foreign::NftTable { family, name, .. } => format!(
                "either remove that table (`nft delete table {family} {name}`, and whatever loads \
                 it: `systemctl disable --now firewalld`, or /etc/nftables.conf) and let autofw \
                 alone decide, or open {what} in it too"
            ),
            Foreign::IptablesNft { .. } => format!(
                "either disable the tool that wrote those iptables rules (`ufw disable`, an old \
                 script, `iptables -P INPUT ACCEPT` for a left-over policy) and let autofw alone \
                 decide, or keep their rules and open {what} in them too"
            ),
            Foreign::IptablesLegacy { .. } => format!(
                "remove the legacy rules (`iptables-legacy-save` shows them; `iptables-legacy -F`, \
                 `iptables-legacy -X`, `iptables-legacy -P INPUT ACCEPT`, the same with \
                 ip6tables-legacy) and whatever loads them at boot (an old script, an old \
                 Docker), or open {what} in them too"
            ),
        }
    }

    /// A short name for lists: "table inet filter", "iptables-nft".
    pub(crate) fn name(&self) -> String {
        match self {
            Foreign::NftTable { family, name, .. } => format!("nftables' table {family} {name}"),
            Foreign::IptablesNft { .. } => "iptables-nft".to_string(),
            Foreign::IptablesLegacy { .. } => "iptables-legacy".to_string(),
        }
    }
}

/// `filter INPUT (policy drop)` or `filter INPUT` for an `iptables-save`.
fn iptables_input(save: &str) -> String {
    let policy_drop = table_section(save, "filter")
        .lines()
        .any(|l| l.trim().starts_with(":INPUT DROP"));
    format!(
        "filter INPUT{}",
        if policy_drop { " (policy drop)" } else { "" }
    )
}

/// The lines of `*table` in an `iptables-save`, up to its COMMIT.
fn table_section<'a>(save: &'a str, table: &str) -> &'a str {
    let header = format!("*{table}\n");
    let Some(start) = save.find(&header) else {
        return "";
    };
    let rest = &save[start + header.len()..];
    &rest[..rest.find("COMMIT").unwrap_or(rest.len())]
}

/// The base chains of an nft table listing on the input or prerouting hook,
/// with their policies.
fn input_chains(table: &str) -> Vec<(String, String)> {
    let mut chains = Vec::new();
    let mut current = None;
    for line in table.lines().map(str::trim) {
        if let Some(name) = line
            .strip_prefix("chain ")
            .and_then(|l| l.strip_suffix(" {"))
        {
            current = Some(name.to_string());
        } else if let Some(chain) = &current
            && line.starts_with("type filter hook ")
        {
            let hook = line.split_whitespace().nth(3).unwrap_or_default();
            if matches!(hook, "input" | "prerouting") {
                let policy = line
                    .split("policy ")
                    .nth(1)
                    .map_or("accept", |p| p.trim_end_matches(';'));
                chains.push((chain.clone(), policy.to_string()));
            }
        }
    }
    chains
}

/// A top-level table block of an nft listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NftTable {
    pub family: String,
    pub name: String,
    pub text: String,
}

/// Split `nft list ruleset` into its tables.
pub(crate) fn nft_tables(ruleset: &str) -> Vec<NftTable> {
    let mut tables = Vec::new();
    let mut current: Option<NftTable> = None;
    for line in ruleset.lines() {
        if let Some(head) = line
            .strip_prefix("table ")
            .and_then(|l| l.strip_suffix(" {"))
        {
            let mut parts = head.split_whitespace();
            if let (Some(family), Some(name)) = (parts.next(), parts.next()) {
                current = Some(NftTable {
                    family: family.to_string(),
                    name: name.to_string(),
                    text: String::new(),
                });
            }
        }
        if let Some(table) = &mut current {
            table.text.push_str(line);
            table.text.push('\n');
            if line == "}" {
                tables.extend(current.take());
            }
        }
    }
    tables
}

/// The `*table` names of an `iptables-save`.
fn saved_tables(save: &str) -> Vec<&str> {
    save.lines()
        .filter_map(|l| l.strip_prefix('*'))
        .map(str::trim)
        .collect()
}

/// Does an `iptables-save` hold anything that filters, beyond autofw's own
/// chains, jump and policies? A table that only lists built-in chains with
/// policy ACCEPT (or only autofw's part) changes nothing.
pub(crate) fn has_foreign_rules(save: &str) -> bool {
    save.lines().map(str::trim).any(|line| {
        if let Some(decl) = line.strip_prefix(':') {
            let mut parts = decl.split_whitespace();
            let (name, policy) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            // A DROP policy only counts when autofw's jump is not there to
            // have set it.
            return policy == "DROP"
                && !(name == "INPUT" && save.contains(AUTOFW_JUMP))
                && !(name == "FORWARD" && save.contains(":AUTOFW-INPUT"));
        }
        let Some(rule) = line.strip_prefix("-A ") else {
            return false;
        };
        !(rule.starts_with("AUTOFW-")
            || line == AUTOFW_JUMP
            || rule.ends_with("-j AUTOFW-INPUT")
            // The published-ports guard's jump from mangle's FORWARD, and
            // its older place, in a DOCKER-USER that autofw may have
            // created itself (a host with plain DNAT).
            || line == GUARD_JUMP_SAVED
            || line == DOCKER_USER_JUMP_SAVED)
    })
}

const AUTOFW_JUMP: &str = "-A INPUT -j AUTOFW-INPUT";

/// The native nft tables that can filter: every table of family ip, ip6 or
/// inet with a base chain on the input or prerouting hook, but autofw's own
/// (`autofw_table`) and those iptables-nft manages (named in its saves,
/// `iptables_nft`: the iptables layer judges those). Works on a terse
/// listing too, so the edge lists in full only these.
pub(crate) fn native_tables<'a>(
    ruleset: &'a str,
    iptables_nft: &[String; 2],
    autofw_table: &str,
) -> impl Iterator<Item = NftTable> + 'a {
    let managed: Vec<String> = [("ip", &iptables_nft[0]), ("ip6", &iptables_nft[1])]
        .iter()
        .flat_map(|(family, save)| {
            saved_tables(save)
                .into_iter()
                .map(move |t| format!("{family} {t}"))
        })
        .collect();
    let autofw_table = autofw_table.to_string();
    nft_tables(ruleset).into_iter().filter(move |table| {
        let id = format!("{} {}", table.family, table.name);
        id != autofw_table
            && !managed.contains(&id)
            && matches!(table.family.as_str(), "ip" | "ip6" | "inet")
            && !input_chains(&table.text).is_empty()
    })
}

/// The foreign filters among the live ones: every native table but
/// autofw's (`inet autofw`) and iptables-nft's, iptables-nft's tables if
/// they filter anything, and legacy tables with rules.
pub(crate) fn foreign(live: &LiveFilters, autofw_table: &str) -> Vec<Foreign> {
    let mut out = Vec::new();
    let ruleset = live.nft_ruleset.as_deref().unwrap_or_default();
    for table in native_tables(ruleset, &live.iptables_nft, autofw_table) {
        out.push(Foreign::NftTable {
            family: table.family,
            name: table.name,
            text: table.text,
        });
    }
    let [v4, v6] = live.iptables_nft.each_ref().map(|s| without_nat(s));
    if has_foreign_rules(&v4) || has_foreign_rules(&v6) {
        out.push(Foreign::IptablesNft { v4, v6 });
    }
    let [v4, v6] = live.legacy.each_ref().map(|s| without_nat(s));
    if has_foreign_rules(&v4) || has_foreign_rules(&v6) {
        out.push(Foreign::IptablesLegacy { v4, v6 });
    }
    out
}

/// An `iptables-save` without its `*nat` table. The nat table rewrites
/// addresses and filters nothing, but in the judge's scratch namespace a
/// DNAT (Docker's published ports, a router's) would send the probe of a
/// forwarded port to a backend that is not there, down FORWARD, and read as
/// a drop on the input path. What is forwarded is the published-ports
/// guard's to decide (FORWARD), not the input path's.
pub(crate) fn without_nat(save: &str) -> String {
    let mut out = String::new();
    let mut in_nat = false;
    for line in save.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('*') {
            in_nat = trimmed == "*nat";
        }
        if !in_nat {
            out.push_str(line);
        }
        if in_nat && trimmed == "COMMIT" {
            in_nat = false;
        }
    }
    out
}

/// What scan says of iptables-legacy: tables with rules, per family, as
/// `iptables-legacy: filter (INPUT policy DROP, 2 rules)`; and tables the
/// kernel lists but no tool could show.
pub(crate) fn legacy_summary(live: &LiveFilters) -> Vec<String> {
    let mut out = Vec::new();
    for (tool, save) in [
        ("iptables-legacy", &live.legacy[0]),
        ("ip6tables-legacy", &live.legacy[1]),
    ] {
        if !has_foreign_rules(save) {
            continue;
        }
        let tables: Vec<String> = saved_tables(save)
            .into_iter()
            .filter_map(|t| {
                let section = table_section(save, t);
                let rules = section.lines().filter(|l| l.starts_with("-A ")).count();
                let drops: Vec<&str> = section
                    .lines()
                    .filter_map(|l| l.strip_prefix(':'))
                    .filter(|d| d.split_whitespace().nth(1) == Some("DROP"))
                    .filter_map(|d| d.split_whitespace().next())
                    .collect();
                if rules == 0 && drops.is_empty() {
                    return None;
                }
                let mut what = Vec::new();
                if !drops.is_empty() {
                    what.push(format!("{} policy DROP", drops.join(", ")));
                }
                what.push(count(rules, "rule", "rules"));
                Some(format!("{t} ({})", what.join(", ")))
            })
            .collect();
        out.push(format!("{tool}: {}", tables.join("; ")));
    }
    if !live.legacy_unreadable.is_empty() {
        out.push(format!(
            "iptables-legacy tables {} exist, but `iptables-legacy-save` is not installed to show \
             them (Debian: apt-get install iptables)",
            live.legacy_unreadable.join(", ")
        ));
    }
    out
}

/// A listing without what changes while the filter stays the same: comment
/// lines (`iptables-save`'s "Generated ... on" time), chain counters
/// (`[12:3456]`), an nft element's `expires 9m58s`, and an ipset entry's
/// remaining `timeout` and its `packets`/`bytes`. What is left decides what
/// the filter does, so it is what a cached verdict is keyed on.
pub(crate) fn stable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let entry = line.starts_with("add ");
        let mut words = line.split_whitespace();
        let mut first = true;
        while let Some(word) = words.next() {
            let counter = word.starts_with('[')
                && word.ends_with(']')
                && word[1..word.len() - 1]
                    .split(':')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if counter {
                continue;
            }
            if word == "expires" || (entry && matches!(word, "timeout" | "packets" | "bytes")) {
                words.next();
                continue;
            }
            if !first {
                out.push(' ');
            }
            out.push_str(word);
            first = false;
        }
        out.push('\n');
    }
    out
}

/// FNV-1a (64 bits) of `text`, in hex: the key of a cached verdict. Not a
/// defence against forgery (only root writes the rules and the state
/// directory), only a fingerprint of what was judged.
pub(crate) fn digest(text: &str) -> String {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(text.as_bytes());
    format!("{:016x}:{}", h.finish(), text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UFW_LEFTOVER: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
    const EMPTY: &str =
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
    const AUTOFW_ONLY: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:AUTOFW-INPUT - [0:0]\n-A INPUT -j AUTOFW-INPUT\n-A AUTOFW-INPUT -i lo -j ACCEPT\nCOMMIT\n";

    #[test]
    fn autofws_own_rules_and_empty_tables_are_not_foreign() {
        assert!(!has_foreign_rules(""));
        assert!(!has_foreign_rules(EMPTY));
        assert!(!has_foreign_rules(AUTOFW_ONLY));
        // autofw created DOCKER-USER for the guard's jump: still its own.
        let guarded = AUTOFW_ONLY.replace(
            "COMMIT",
            &format!(":DOCKER-USER - [0:0]\n:AUTOFW-PUBLISHED - [0:0]\n{DOCKER_USER_JUMP_SAVED}\n-A AUTOFW-PUBLISHED -j DROP\nCOMMIT"),
        );
        assert!(!has_foreign_rules(&guarded));
        assert!(has_foreign_rules(
            &guarded.replace("COMMIT", "-A DOCKER-USER -j RETURN\nCOMMIT")
        ));
        assert!(has_foreign_rules(UFW_LEFTOVER));
        assert!(has_foreign_rules(
            &AUTOFW_ONLY.replace("COMMIT", "-A INPUT -j DROP\nCOMMIT")
        ));
    }

    #[test]
    fn nat_tables_are_not_filters() {
        let dnat = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80\nCOMMIT\n";
        let both = format!("# Generated by iptables-save\n{dnat}{AUTOFW_ONLY}");
        assert_eq!(
            without_nat(&both),
            format!("# Generated by iptables-save\n{AUTOFW_ONLY}")
        );
        let live = LiveFilters {
            iptables_nft: [both, String::new()],
            legacy: [dnat.to_string(), String::new()],
            ..Default::default()
        };
        // A router's DNATs beside autofw's own rules: no other filter.
        assert!(foreign(&live, "inet autofw").is_empty());
        // With a filter rule, the filter table alone is judged.
        let live = LiveFilters {
            iptables_nft: [format!("{dnat}{UFW_LEFTOVER}"), String::new()],
            ..Default::default()
        };
        assert_eq!(
            foreign(&live, "inet autofw"),
            [Foreign::IptablesNft {
                v4: UFW_LEFTOVER.to_string(),
                v6: String::new()
            }]
        );
    }

    #[test]
    fn foreign_filters_are_found_and_named() {
        let ruleset = "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n}\n\
                       table inet autofw {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n}\n\
                       table inet firewalld {\n\tchain filter_INPUT {\n\t\ttype filter hook input priority filter + 10; policy accept;\n\t\treject\n\t}\n}\n\
                       table ip nat {\n\tchain POSTROUTING {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\n";
        let live = LiveFilters {
            nft_ruleset: Some(ruleset.into()),
            iptables_nft: [UFW_LEFTOVER.into(), EMPTY.into()],
            legacy: [String::new(), String::new()],
            ..LiveFilters::default()
        };
        let found = foreign(&live, "inet autofw");
        let names: Vec<String> = found.iter().map(|f| f.dropper(false)).collect();
        assert_eq!(
            names,
            [
                "nftables' table inet firewalld chain filter_INPUT",
                "iptables-nft's filter INPUT (policy drop)"
            ]
        );
        assert_eq!(found[1].dropper(true), "ip6tables-nft's filter INPUT");
    }

    #[test]
    fn legacy_tables_are_summed_up() {
        let live = LiveFilters {
            legacy: [UFW_LEFTOVER.into(), AUTOFW_ONLY.into()],
            ..LiveFilters::default()
        };
        assert_eq!(
            legacy_summary(&live),
            ["iptables-legacy: filter (INPUT policy DROP, 1 rule)"]
        );
        assert!(legacy_summary(&LiveFilters::default()).is_empty());
        assert_eq!(
            foreign(&live, "inet autofw"),
            [Foreign::IptablesLegacy {
                v4: UFW_LEFTOVER.into(),
                v6: AUTOFW_ONLY.into()
            }]
        );
    }

    #[test]
    fn a_stable_listing_keeps_the_rules_and_drops_counters_times_and_timeouts() {
        let saved = |time: &str, counter: &str, left: &str| {
            format!(
                "# Generated by iptables-nft-save v1.8.9 on {time}\n*filter\n:INPUT ACCEPT {counter}\n\
                 -A INPUT -m set --match-set f2b-sshd src -j REJECT\nCOMMIT\n\
                 create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600\n\
                 add f2b-sshd 198.51.100.7 timeout {left}\n\
                 table inet f2b-table {{\n\tset addr-set-sshd {{\n\t\telements = {{ 198.51.100.7 timeout 10m expires {left}s }}\n\t}}\n}}\n"
            )
        };
        let a = stable(&saved("Wed Dec  2 13:32:28 2026", "[0:0]", "599"));
        let b = stable(&saved("Wed Dec  2 13:37:28 2026", "[1200:98765]", "299"));
        assert_eq!(a, b);
        assert_eq!(digest(&a), digest(&b));
        assert!(
            a.contains("-A INPUT -m set --match-set f2b-sshd src -j REJECT"),
            "{a}"
        );
        assert!(
            a.contains(
                "create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600"
            ),
            "{a}"
        );
        // A new ban, or a changed rule, is a change.
        let banned = stable(
            &saved("x", "[0:0]", "599")
                .replace("198.51.100.7 timeout 10m", "198.51.100.8 timeout 10m"),
        );
        assert_ne!(digest(&a), digest(&banned));
        assert_ne!(digest(&a), digest(&stable(&a.replace("REJECT", "DROP"))));
    }
}
