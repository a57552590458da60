//! Rendering a [`Ruleset`] as `iptables-restore --noflush` (IPv4) or
//! `ip6tables-restore --noflush` (IPv6) input, for hosts without nftables.
//!
//! Only autofw's own chains are declared, and so flushed: `AUTOFW-INPUT` in
//! the filter table and, on a host that routes, the published-ports guard
//! `AUTOFW-PUBLISHED` in the mangle table ([`GUARD_JUMP`] says why there).
//! The built-in chains get their policies and one jump line each, and every
//! other chain (Docker's, netavark's, fail2ban's) is left as it is. The blocklist is matched
//! with `-m set` against an ipset (one hash lookup per packet): iptables has
//! no sets of its own, so the set is loaded first with `ipset restore`
//! from [`ipset_restore`].

use super::rate::Rate;
use super::ruleset::*;
use super::text::{comment_lines, quoted};
use crate::blocklist::{Key, Ranges, SetKind, cidrs};
use crate::model::Proto;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// autofw's chain, jumped to from INPUT.
pub(crate) const INPUT_CHAIN: &str = "AUTOFW-INPUT";

/// The line that hooks autofw's chain into INPUT (apply leaves it out when
/// the live INPUT already has it).
pub(crate) const JUMP_LINE: &str = "-A INPUT -j AUTOFW-INPUT";

/// autofw's chain for forwarded (DNAT) ports, in the mangle table, jumped
/// to from mangle's FORWARD ([`GUARD_JUMP`]).
pub(crate) const PUBLISHED_CHAIN: &str = "AUTOFW-PUBLISHED";

/// The line that hooks the published-ports chain into the mangle table's
/// FORWARD. Why mangle: its forward hook (priority -150) runs after the nat
/// prerouting hook has DNATed a connection's first packet (so conntrack's
/// `DNAT` state and original port are known) and before the filter table's
/// FORWARD (priority 0), where every engine accepts what it publishes:
/// Docker (`DOCKER-USER`, `DOCKER`), netavark (`NETAVARK_FORWARD`), CNI
/// (`CNI-FORWARD`), each inserting its own jumps at the top of filter's
/// FORWARD whenever it (re)starts. No engine writes to mangle's FORWARD, so
/// nothing they re-insert can come first. (raw and mangle PREROUTING run
/// before the DNAT: a new connection is not yet `DNAT` there.) apply leaves
/// the line out when the live mangle FORWARD already has it
/// ([`Hooks::Live`]).
pub(crate) const GUARD_JUMP: &str = "-I FORWARD 1 -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED";

/// The same jump as `iptables-save -t mangle` lists it.
pub(crate) const GUARD_JUMP_SAVED: &str =
    "-A FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED";

/// Docker's chain, which an autofw before issue 20 hooked the guard into
/// (in the filter table): only Docker's FORWARD jumps there, so netavark's
/// and CNI's published ports and plain DNATs went unguarded. apply and the
/// boot hook take that old jump (and the filter table's old chain) out.
pub(crate) const DOCKER_USER: &str = "DOCKER-USER";

/// The old jump, as an undo puts it back (a rollback to rules an older
/// autofw applied).
pub(crate) const DOCKER_USER_JUMP: &str =
    "-I DOCKER-USER 1 -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED";

/// The old jump, as `iptables-save` lists it.
pub(crate) const DOCKER_USER_JUMP_SAVED: &str =
    "-A DOCKER-USER -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED";

/// How the boot files hook autofw's chain into INPUT: inserted first, not
/// appended. An accept that ufw or a script loaded earlier in boot then
/// comes after it and cannot let past what autofw drops; fail2ban starts
/// later and inserts its chains ahead anyway. (apply places the jump among
/// the live rules instead, [`LiveFit`]: at boot there is nothing to read
/// yet.)
pub(crate) const BOOT_JUMP_LINE: &str = "-I INPUT 1 -j AUTOFW-INPUT";

/// One family's rules for `iptables-restore --noflush`, as typed parts:
/// what autofw declares in the filter table and, on a host that routes, in
/// the mangle table. The lines that hook them into the built-in chains are
/// not part of it: [`Script::render`] writes them for where the text goes
/// ([`Hooks`]), so no rendered text is ever edited afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// The header comments, `*filter`, the policies, autofw's chain and its
    /// rules: everything of the filter table but the INPUT jump and `COMMIT`.
    pub filter: String,
    /// `*mangle` and the published-ports guard's chain, without its jump
    /// from FORWARD and `COMMIT`; `None` when the host does not route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

/// Where a [`Script`] goes, which decides how its chains are hooked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hooks<'a> {
    /// The proposal file (and what records and comparisons read): the jump
    /// appended to INPUT ([`JUMP_LINE`]), the guard's inserted first in
    /// mangle's FORWARD ([`GUARD_JUMP`]).
    Proposal,
    /// The boot files: the INPUT jump inserted first ([`BOOT_JUMP_LINE`]);
    /// the boot hook deletes any loaded before.
    Boot,
    /// A load onto the live tables, fitted to what they hold ([`LiveFit`]).
    Live(&'a LiveFit),
}

/// What a load must do beyond the script's own lines, read from the live
/// tables by the iptables backend: where the INPUT jump goes, which hooks
/// are already there, and what an older autofw left that this one takes out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LiveFit {
    pub input_jump: InputJump,
    /// mangle's FORWARD already jumps to the guard: the jump is not added
    /// again.
    pub guard_jump_loaded: bool,
    /// Docker's DOCKER-USER jumps to a filter-table `AUTOFW-PUBLISHED` (the
    /// guard as an autofw before issue 20 hooked it): the jump is deleted.
    pub old_docker_jump: bool,
    /// The filter table holds that old `AUTOFW-PUBLISHED`: it is deleted.
    pub old_filter_guard: bool,
    /// autofw's chains in the mangle table, to delete (with the jump) when
    /// this script has no guard (the host no longer routes).
    pub mangle_chains: Vec<String>,
}

/// Where the INPUT jump goes in a live INPUT chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputJump {
    /// Exactly one jump is there, where it belongs: none is added.
    Placed,
    /// Delete the `misplaced` jumps there are, then insert one at this
    /// 1-based `position` (after the rules that cannot accept, before the
    /// first that can), in the same transaction.
    Insert { position: usize, misplaced: usize },
}

impl Default for InputJump {
    /// An empty INPUT: the jump goes first.
    fn default() -> Self {
        InputJump::Insert {
            position: 1,
            misplaced: 0,
        }
    }
}

impl Script {
    /// The `iptables-restore --noflush` input for where it goes.
    pub(crate) fn render(&self, hooks: Hooks) -> String {
        let fit = match hooks {
            Hooks::Live(fit) => Some(fit),
            Hooks::Proposal | Hooks::Boot => None,
        };
        let mut out = self.filter.clone();
        out.push_str(&comment_lines("hook autofw's chain into INPUT", ""));
        let jump = JUMP_LINE
            .strip_prefix("-A INPUT ")
            .expect("the jump line appends to INPUT");
        match hooks {
            Hooks::Proposal => {
                let _ = writeln!(out, "{JUMP_LINE}");
            }
            Hooks::Boot => {
                let _ = writeln!(out, "{BOOT_JUMP_LINE}");
            }
            Hooks::Live(fit) => match fit.input_jump {
                InputJump::Placed => {}
                InputJump::Insert {
                    position,
                    misplaced,
                } => {
                    for _ in 0..misplaced {
                        let _ = writeln!(out, "-D INPUT {jump}");
                    }
                    let _ = writeln!(out, "-I INPUT {position} {jump}");
                }
            },
        }
        if let Some(fit) = fit {
            if fit.old_docker_jump {
                let _ = writeln!(out, "-D {}", &DOCKER_USER_JUMP_SAVED[3..]);
            }
            if fit.old_filter_guard {
                let _ = writeln!(out, ":{PUBLISHED_CHAIN} - [0:0]\n-X {PUBLISHED_CHAIN}");
            }
        }
        out.push_str("COMMIT\n");
        match &self.guard {
            Some(guard) => {
                out.push_str(guard);
                out.push_str(&comment_lines(
                    "hook it into the top of mangle's FORWARD: it runs after the DNAT and before every engine's FORWARD rules in the filter table (Docker, podman's netavark, CNI), which no engine restart can change",
                    "",
                ));
                if !fit.is_some_and(|f| f.guard_jump_loaded) {
                    let _ = writeln!(out, "{GUARD_JUMP}");
                }
                out.push_str("COMMIT\n");
            }
            None => {
                if let Some(fit) = fit
                    && (fit.guard_jump_loaded || !fit.mangle_chains.is_empty())
                {
                    out.push_str("*mangle\n");
                    if fit.guard_jump_loaded {
                        let _ = writeln!(out, "-D {}", &GUARD_JUMP_SAVED[3..]);
                    }
                    for chain in &fit.mangle_chains {
                        let _ = writeln!(out, ":{chain} - [0:0]\n-X {chain}");
                    }
                    out.push_str("COMMIT\n");
                }
            }
        }
        out
    }
}

/// The ipset that holds a family's blocklist.
pub(crate) fn ipset_name(family: Family) -> &'static str {
    family.pick("autofw-block-v4", "autofw-block-v6")
}

fn rate(r: &Rate) -> String {
    format!(
        "--limit {}/{} --limit-burst {}",
        r.count,
        r.per.as_str(),
        r.burst
    )
}

fn icmp_name(t: IcmpType) -> &'static str {
    match t {
        // ip6tables has no name for it.
        IcmpType::MldListenerQuery => "130",
        other => other.name(),
    }
}

fn has_entries(blocklist: &Blocklist, family: Family) -> bool {
    match family {
        Family::Ipv4 => !blocklist.ipv4.is_empty(),
        Family::Ipv6 => !blocklist.ipv6.is_empty(),
    }
}

/// The rule lines (without `-A CHAIN`) for one model rule in `family`;
/// empty when the rule is for the other family.
fn rule_lines(rule: &Rule, family: Family, blocklist: &Blocklist) -> Vec<String> {
    let target = match &rule.action {
        Action::Accept => "-j ACCEPT".to_string(),
        Action::Drop => "-j DROP".to_string(),
        Action::Log { prefix } => format!("-j LOG --log-prefix {}", quoted(prefix, 29)),
    };
    let comment = format!("-m comment --comment {}", quoted(&rule.label, 255));
    let with = |m: String| format!("{m} {comment} {target}");
    match &rule.matches {
        Match::Loopback => vec![with("-i lo".into())],
        // ipset's hash:net holds addresses and networks alike: one rule, on
        // the addresses' line, when the family has entries at all.
        Match::Blocklisted {
            family: f,
            kind: SetKind::Addresses,
        } if *f == family && has_entries(blocklist, family) => {
            vec![with(format!(
                "-m set --match-set {} src",
                ipset_name(family)
            ))]
        }
        Match::Blocklisted { .. } => vec![],
        Match::ConntrackInvalid => vec![with("-m conntrack --ctstate INVALID".into())],
        Match::ConntrackEstablished => {
            vec![with("-m conntrack --ctstate RELATED,ESTABLISHED".into())]
        }
        Match::TcpNewWithoutSyn => vec![with("-p tcp ! --syn -m conntrack --ctstate NEW".into())],
        Match::Icmp {
            family: f,
            types,
            limit,
            hop_limit,
            link_local_source,
        } if *f == family => types
            .iter()
            .map(|t| {
                let mut m = String::new();
                if *link_local_source {
                    m.push_str("-s fe80::/10 ");
                }
                match family {
                    Family::Ipv4 => write!(m, "-p icmp --icmp-type {}", icmp_name(*t)),
                    Family::Ipv6 => {
                        write!(m, "-p ipv6-icmp --icmpv6-type {}", icmp_name(*t))
                    }
                }
                .ok();
                if let Some(h) = hop_limit {
                    write!(m, " -m hl --hl-eq {h}").ok();
                }
                if let Some(l) = limit {
                    write!(m, " -m limit {}", rate(l)).ok();
                }
                with(m)
            })
            .collect(),
        Match::Icmp { .. } => vec![],
        Match::OverRate {
            proto,
            port,
            family: f,
            rate: r,
        } if *f == family => vec![with(format!(
            "-p {proto} --dport {port} -m conntrack --ctstate NEW -m hashlimit \
             --hashlimit-above {}/{} --hashlimit-burst {} --hashlimit-mode srcip \
             --hashlimit-name {}",
            r.count,
            r.per.as_str(),
            r.burst,
            hashlimit_name(*proto, *port)
        ))],
        Match::OverRate { .. } => vec![],
        Match::Service { bound: Some(b), .. } if b.excludes(family) => vec![],
        Match::Service {
            proto,
            port,
            family: f,
            sources,
            bound,
            ..
        } => {
            // `-i NAME` matches by name, like nft's iifname: it holds for
            // interfaces created after the rules are loaded.
            let to = match bound {
                Some(b) => {
                    let mut to = String::new();
                    if let Some(interface) = &b.interface {
                        to.push_str(&format!("-i {} ", quoted(interface, 15)));
                    }
                    if let Some(address) = b.address {
                        to.push_str(&format!("-d {} ", address.to_canonical()));
                    }
                    to
                }
                None => String::new(),
            };
            match f {
                None => vec![with(format!("{to}-p {proto} --dport {port}"))],
                Some(f) if *f == family => sources
                    .iter()
                    .map(|net| with(format!("{to}-s {net} -p {proto} --dport {port}")))
                    .collect(),
                Some(_) => vec![],
            }
        }
        Match::Limited { limit } => vec![with(format!("-m limit {}", rate(limit)))],
        Match::Any => vec![with(String::new()).trim_start().to_string()],
    }
}

/// The hashlimit table of one port (the kernel allows 15 characters).
fn hashlimit_name(proto: Proto, port: u16) -> String {
    format!("afw-{proto}-{port}")
}

/// One family's `iptables-restore --noflush` input, without the lines that
/// hook autofw's chains into the built-in ones: those depend on where the
/// text goes ([`Hooks`]), and [`Script::render`] writes them.
pub(crate) fn script(ruleset: &Ruleset, family: Family, header: &[String]) -> Script {
    let mut out = String::new();
    for line in header {
        out.push_str(&comment_lines(line, ""));
    }
    let blocklisted = match family {
        Family::Ipv4 => ruleset.blocklist.ipv4.len(),
        Family::Ipv6 => ruleset.blocklist.ipv6.len(),
    };
    if blocklisted > 0 {
        out.push_str(&comment_lines(
            &format!(
                "This ruleset matches the blocklist ({blocklisted} entries) with `-m set` against \
                 the ipset `{}`, which must exist before it is loaded: write it with \
                 `autofw propose --ipset FILE` (same options) and load it with \
                 `ipset restore -exist < FILE` (Debian package: ipset).",
                ipset_name(family)
            ),
            "",
        ));
    }
    out.push_str("*filter\n");
    out.push_str(&comment_lines(
        "INPUT: default drop; everything is decided in AUTOFW-INPUT",
        "",
    ));
    out.push_str(":INPUT DROP [0:0]\n");
    match &ruleset.forward {
        Forward::Drop { reason } => {
            out.push_str(&comment_lines(&format!("FORWARD: {reason}"), ""));
            out.push_str(":FORWARD DROP [0:0]\n");
        }
        Forward::LeaveAlone { reason } => {
            out.push_str(&comment_lines(&format!("FORWARD: {reason}"), ""));
        }
    }
    out.push_str(&comment_lines(
        "OUTPUT: this host may start any connection; the replies come back as established",
        "",
    ));
    out.push_str(":OUTPUT ACCEPT [0:0]\n");
    let _ = writeln!(out, ":{INPUT_CHAIN} - [0:0]");
    for rule in &ruleset.input {
        let lines = rule_lines(rule, family, &ruleset.blocklist);
        if lines.is_empty() {
            continue;
        }
        out.push_str(&comment_lines(&rule.reason, ""));
        for line in lines {
            let _ = writeln!(out, "-A {INPUT_CHAIN} {line}");
        }
    }
    Script {
        filter: out,
        guard: ruleset
            .published
            .as_ref()
            .map(|guard| published_lines(guard, family)),
    }
}

/// The mangle table's published-ports chain, to be jumped to from mangle's
/// FORWARD (see [`GUARD_JUMP`]; [`Script::render`] writes the jump): new
/// DNATed connections from outside the bridges return for the opened ports
/// and are dropped otherwise (never accepted: the engines' FORWARD rules
/// still decide what passes).
fn published_lines(guard: &PublishedGuard, family: Family) -> String {
    let mut out = String::new();
    let c = PUBLISHED_CHAIN;
    out.push_str("*mangle\n");
    out.push_str(&comment_lines(
        &format!("FORWARD, published ports: {}", guard.reason),
        "",
    ));
    let _ = writeln!(out, ":{c} - [0:0]");
    let _ = writeln!(out, "-A {c} -m conntrack ! --ctstate NEW -j RETURN");
    for bridge in &guard.bridges {
        let _ = writeln!(out, "-A {c} -i {bridge}+ -j RETURN");
    }
    for open in &guard.open {
        let comment = format!("-m comment --comment {}", quoted(&open.label, 255));
        if open.bound.as_ref().is_some_and(|b| b.excludes(family)) {
            continue;
        }
        let mut port = String::new();
        if let Some(bound) = &open.bound
            && let Some(interface) = &bound.interface
        {
            port.push_str(&format!("-i {} ", quoted(interface, 15)));
        }
        port.push_str(&format!(
            "-p {p} -m conntrack --ctproto {p}",
            p = open.proto
        ));
        if let Some(address) = open.bound.as_ref().and_then(|b| b.address) {
            port.push_str(&format!(" --ctorigdst {}", address.to_canonical()));
        }
        port.push_str(&format!(" --ctorigdstport {}", open.port));
        match open.family {
            None => {
                let _ = writeln!(out, "-A {c} {port} {comment} -j RETURN");
            }
            Some(f) if f == family => {
                for net in &open.sources {
                    let _ = writeln!(out, "-A {c} -s {net} {port} {comment} -j RETURN");
                }
            }
            Some(_) => {}
        }
    }
    let _ = writeln!(
        out,
        "-A {c} -m limit {} -m comment --comment \"log\" -j LOG --log-prefix {}",
        rate(&super::rules::LOG_RATE),
        quoted(super::rules::PUBLISHED_LOG_PREFIX, 29)
    );
    let _ = writeln!(
        out,
        "-A {c} -m comment --comment \"published-closed\" -j DROP"
    );
    out
}

/// `ipset restore` input that creates (or refills) the blocklist sets, or
/// `None` when there is no blocklist.
pub(crate) fn ipset_restore(ruleset: &Ruleset) -> Option<String> {
    if ruleset.blocklist.is_empty() {
        return None;
    }
    let mut out = String::new();
    for set in ipsets(ruleset) {
        let _ = writeln!(out, "create {}", set.create);
        let _ = writeln!(out, "flush {}", set.name);
        for net in &set.nets {
            let _ = writeln!(out, "add {} {net}", set.name);
        }
    }
    Some(out)
}

/// One blocklist ipset: its name, the rest of its `create` line, its blocks.
struct Ipset {
    name: &'static str,
    create: String,
    nets: Vec<String>,
}

/// The blocklist's ipsets, a family with nothing to block left out.
fn ipsets(ruleset: &Ruleset) -> Vec<Ipset> {
    let v4 = ranges_as_cidrs(&ruleset.blocklist.ipv4);
    let v6 = ranges_as_cidrs(&ruleset.blocklist.ipv6);
    [(Family::Ipv4, v4, "inet"), (Family::Ipv6, v6, "inet6")]
        .into_iter()
        .filter(|(_, nets, _)| !nets.is_empty())
        .map(|(family, nets, inet)| {
            let name = ipset_name(family);
            let maxelem = nets.len().max(65536);
            Ipset {
                name,
                create: format!("{name} hash:net family {inet} maxelem {maxelem}"),
                nets,
            }
        })
        .collect()
}

/// ipset's hash:net takes CIDR blocks only: a merged range becomes the
/// fewest blocks that cover it.
fn ranges_as_cidrs<K: Key>(ranges: &Ranges<K>) -> Vec<String> {
    ranges
        .ranges()
        .iter()
        .flat_map(|&(a, b)| cidrs(a, b))
        .collect()
}

/// The blocklist's ipsets as apply shows them (`None` without a
/// blocklist): the `ipset restore` input whole when short, else one line a
/// set with its count, so the output scales with the rules and not with a
/// million-entry list.
pub(crate) fn ipsets_for_people(ruleset: &Ruleset) -> Option<String> {
    const SHOWN_WHOLE: usize = 40;
    if ruleset.blocklist.is_empty() {
        return None;
    }
    let sets = ipsets(ruleset);
    let lines: usize = sets.iter().map(|set| 2 + set.nets.len()).sum();
    if lines <= SHOWN_WHOLE {
        let whole = ipset_restore(ruleset)?;
        return Some(format!(
            "# ipset restore -exist (loaded first)\n{}",
            whole.trim_end()
        ));
    }
    let mut out = String::from("# ipset restore -exist (loaded first):");
    for set in &sets {
        out.push_str(&format!(
            "\n#   {}: {} entries",
            set.create,
            crate::human::thousands(set.nets.len())
        ));
    }
    Some(out)
}

#[cfg(test)]
mod ipsets_tests {
    use super::*;
    use crate::blocklist::Ranges;

    fn ruleset(v4: Vec<(u32, u32)>, v6: Vec<(u128, u128)>) -> Ruleset {
        Ruleset {
            input: Vec::new(),
            forward: Forward::LeaveAlone {
                reason: String::new(),
            },
            published: None,
            blocklist: Blocklist {
                enabled: true,
                shards: 1,
                ipv4: Ranges::merge(v4),
                ipv6: Ranges::merge(v6),
            },
            closed: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_long_ipset_input_is_shown_as_counts() {
        // 100 single addresses, every other one, so none merge.
        let v4 = (0..100u32)
            .map(|i| (0x0a00_0000 + 2 * i, 0x0a00_0000 + 2 * i))
            .collect();
        assert_eq!(
            ipsets_for_people(&ruleset(v4, vec![(1, 1)])).unwrap(),
            "# ipset restore -exist (loaded first):\n\
             #   autofw-block-v4 hash:net family inet maxelem 65536: 100 entries\n\
             #   autofw-block-v6 hash:net family inet6 maxelem 65536: 1 entries"
        );
        let short = ruleset(vec![(0x0a00_0001, 0x0a00_0001)], Vec::new());
        let shown = ipsets_for_people(&short).unwrap();
        assert_eq!(
            shown,
            format!(
                "# ipset restore -exist (loaded first)\n{}",
                ipset_restore(&short).unwrap().trim_end()
            )
        );
        assert!(
            shown.ends_with("add autofw-block-v4 10.0.0.1/32"),
            "{shown}"
        );
        assert_eq!(ipsets_for_people(&ruleset(Vec::new(), Vec::new())), None);
    }
}

#[cfg(test)]
mod hooks_tests {
    use super::*;

    #[test]
    fn hooks_are_written_for_where_the_script_goes() {
        let script = Script {
            filter: "*filter\n:INPUT DROP [0:0]\n:AUTOFW-INPUT - [0:0]\n\
                     -A AUTOFW-INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
                .to_string(),
            guard: Some(
                "*mangle\n:AUTOFW-PUBLISHED - [0:0]\n-A AUTOFW-PUBLISHED -j DROP\n".to_string(),
            ),
        };
        // The proposal file: appended to INPUT, inserted first in FORWARD.
        let file = script.render(Hooks::Proposal);
        assert!(
            file.contains(&format!("\n{JUMP_LINE}\nCOMMIT\n*mangle\n")),
            "{file}"
        );
        assert!(
            file.ends_with(&format!("\n{GUARD_JUMP}\nCOMMIT\n")),
            "{file}"
        );
        // Boot: the INPUT jump inserted first, and only that differs.
        let boot = script.render(Hooks::Boot);
        assert!(
            boot.contains(&format!("\n{BOOT_JUMP_LINE}\nCOMMIT\n")),
            "{boot}"
        );
        assert!(!boot.contains("-A INPUT "), "{boot}");
        assert_eq!(boot.replace(BOOT_JUMP_LINE, JUMP_LINE), file);
        // Live, both hooks already there: neither is added again, and the
        // chains are still declared (so flushed and refilled).
        let hooked = LiveFit {
            input_jump: InputJump::Placed,
            guard_jump_loaded: true,
            ..LiveFit::default()
        };
        let live = script.render(Hooks::Live(&hooked));
        assert!(!live.contains("-j AUTOFW-INPUT\n"), "{live}");
        assert!(!live.contains("-j AUTOFW-PUBLISHED\n"), "{live}");
        assert!(
            live.contains(":AUTOFW-INPUT - [0:0]\n")
                && live.contains(":AUTOFW-PUBLISHED - [0:0]\n")
        );
        // Live, an empty host: the jump inserted first, like boot's.
        let fresh = script.render(Hooks::Live(&LiveFit::default()));
        assert_eq!(fresh, boot);
    }
}
