//! Other packet filters on the host, which also decide: ufw, firewalld,
//! `/etc/nftables.conf`, an old script's iptables rules, iptables-legacy
//! tables (docs/foreign.md).
//!
//! - [`filters`]: what they are and what they are called, pure;
//! - [`judge`]: the hidden `autofw judge`, which loads them with autofw's
//!   rules into a scratch network namespace and probes every opened port;
//! - [`verdict`]: probes → who drops what, in words, pure;
//! - this file: the edges, reading the live filters and running the judge.

pub mod filters;
pub mod judge;
pub mod verdict;

use crate::firewall::backend::exec::{run_tool, tool_exists};
use crate::model::Proto;
use crate::propose::{Format, Proposal};
use crate::record::{Backend, Rules};
use filters::{Foreign, LiveFilters};
use judge::{Judged, Layer, Plan};
pub use verdict::ForeignDrop;
use verdict::Verdict;

/// autofw's own table, which is never foreign.
const AUTOFW_TABLE: &str = "inet autofw";

/// What the other filters do to autofw's rules.
#[derive(Debug, Clone, Default)]
pub struct Check {
    /// Each filter that drops or rejects ports autofw opens.
    pub drops: Vec<ForeignDrop>,
    /// iptables-legacy tables with rules, summed up (scan's note).
    pub legacy: Vec<String>,
    /// What could not be judged, and why.
    pub notes: Vec<String>,
}

impl Check {
    /// Warnings for propose and apply: the drops, then legacy tables that
    /// drop nothing autofw opens (still worth knowing: they are invisible).
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .drops
            .iter()
            .map(|d| format!("{}; to resolve it: {}", d.message, d.fix))
            .collect();
        if !self.legacy.is_empty() && !self.drops.iter().any(|d| d.legacy) {
            out.push(verdict::legacy_note(
                &self.legacy,
                "they drop none of the ports autofw opens",
            ));
        }
        out.extend(self.notes.iter().cloned());
        out
    }
}

/// Read the live filters. Root only (the caller checks).
pub fn read_live() -> anyhow::Result<LiveFilters> {
    let nft_ruleset = if tool_exists("nft") {
        Some(ruleset_but_autofw()?)
    } else {
        None
    };
    let save = |tool: &str| {
        if tool_exists(tool) {
            run_tool(tool, &[], None).unwrap_or_default()
        } else {
            String::new()
        }
    };
    let iptables_nft = [save("iptables-nft-save"), save("ip6tables-nft-save")];
    let (legacy, legacy_unreadable) = read_legacy();
    let ipsets = if tool_exists("ipset") {
        run_tool("ipset", &["save"], None).ok()
    } else {
        None
    };
    Ok(LiveFilters {
        nft_ruleset,
        iptables_nft,
        legacy,
        legacy_unreadable,
        ipsets,
    })
}

/// Every nft table but autofw's own, with their set elements, as `nft -s
/// list ruleset` lists them: one `nft list table` each, found in the terse
/// listing. autofw's table is never foreign, and a million-entry blocklist
/// in it would cost nft 6 s and 360 MB to list (docs/propose.md). A table
/// gone between the two listings filters nothing any more.
fn ruleset_but_autofw() -> anyhow::Result<String> {
    let terse = crate::firewall::backend::nft::live_ruleset()?;
    let mut out = String::new();
    for table in filters::nft_tables(&terse) {
        if format!("{} {}", table.family, table.name) == AUTOFW_TABLE {
            continue;
        }
        let args = ["-s", "list", "table", &table.family, &table.name];
        if let Ok(text) = run_tool("nft", &args, None) {
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// The legacy tables the kernel lists, saved. `iptables-legacy-save` is run
/// without `-t`, and only when a table exists: asking for a table by name
/// would create it.
fn read_legacy() -> ([String; 2], Vec<String>) {
    let mut saves = [String::new(), String::new()];
    let mut unreadable = Vec::new();
    for (i, (names, tool)) in [
        ("/proc/net/ip_tables_names", "iptables-legacy-save"),
        ("/proc/net/ip6_tables_names", "ip6tables-legacy-save"),
    ]
    .into_iter()
    .enumerate()
    {
        let tables = std::fs::read_to_string(names).unwrap_or_default();
        if tables.trim().is_empty() {
            continue;
        }
        if tool_exists(tool) {
            saves[i] = run_tool(tool, &[], None).unwrap_or_default();
        } else {
            unreadable.extend(tables.split_whitespace().map(str::to_string));
        }
    }
    (saves, unreadable)
}

/// scan's notes about other filters: iptables-legacy tables with rules.
pub fn legacy_notes() -> Vec<String> {
    let legacy = legacy_summary();
    if legacy.is_empty() {
        return Vec::new();
    }
    vec![verdict::legacy_note(
        &legacy,
        "`autofw propose` says what they do to its rules",
    )]
}

/// propose's warnings about other filters: what they drop of `proposal`,
/// loaded as `format` says.
pub fn proposal_warnings(proposal: &Proposal, format: Format) -> Vec<String> {
    let backend = match format {
        Format::Nft => Backend::Nft,
        Format::Iptables | Format::Ip6tables => Backend::Iptables,
    };
    let ports = ports_of(&crate::record::opened_ports(proposal.ruleset()));
    check(&Rules::render(proposal, backend), &ports).warnings()
}

/// Legacy tables with rules, summed up (root only; empty otherwise).
pub fn legacy_summary() -> Vec<String> {
    if !rustix::process::geteuid().is_root() {
        return Vec::new();
    }
    let (legacy, legacy_unreadable) = read_legacy();
    filters::legacy_summary(&LiveFilters {
        legacy,
        legacy_unreadable,
        ..LiveFilters::default()
    })
}

/// What the host's other filters do to `rules` (autofw's, to be loaded or
/// loaded already), judged by the kernel in scratch namespaces. `ports`
/// are the ports the rules open. Needs root; without it, or without the
/// tools, the check says why it was not made.
pub fn check(rules: &Rules, ports: &[(Proto, u16)]) -> Check {
    let mut check = Check::default();
    if !rustix::process::geteuid().is_root() {
        return check;
    }
    let live = match read_live() {
        Ok(live) => live,
        Err(err) => {
            check.notes.push(format!(
                "the host's other filters could not be read: {err:#}"
            ));
            return check;
        }
    };
    check.legacy = filters::legacy_summary(&live);
    let foreign = filters::foreign(&live, AUTOFW_TABLE);
    if foreign.is_empty() || ports.is_empty() {
        return check;
    }
    if let Some(missing) = judge::TOOLS.iter().find(|t| !tool_exists(t)) {
        check.notes.push(format!(
            "the other filters ({}) were not checked against autofw's rules: `{missing}` is not \
             installed",
            names(&foreign)
        ));
        return check;
    }
    let autofw = autofw_layer(rules);
    let sets = ipset_layer(&live, &foreign);
    let layers = |filters: &[&Foreign]| -> Vec<Layer> {
        let mut layers: Vec<Layer> = sets.iter().cloned().collect();
        layers.extend(filters.iter().map(|f| layer_of(f)));
        layers.push(autofw.clone());
        layers
    };
    let run = |layers: Vec<Layer>| run_judge(layers, ports);
    let unchecked = |err: anyhow::Error| {
        format!(
            "the other filters ({}) could not be checked against autofw's rules in a scratch \
             network namespace: {err:#}",
            names(&foreign)
        )
    };
    let all: Vec<&Foreign> = foreign.iter().collect();
    let together = match run(layers(&all)) {
        Ok(together) => together,
        Err(err) => {
            check.notes.push(unchecked(err));
            return check;
        }
    };
    for error in &together.load_errors {
        check.notes.push(format!(
            "part of the other filters could not be loaded into the scratch namespace, so the \
             check of what they drop is incomplete: {error}"
        ));
    }
    // Only a port the whole host stops can be a foreign drop: when every
    // probe got in, autofw's rules alone need no judging of their own.
    if together.outcomes.iter().all(|o| o.verdict == Verdict::Open) {
        return check;
    }
    let alone = match run(layers(&[])) {
        Ok(alone) => alone,
        Err(err) => {
            check.notes.push(unchecked(err));
            return check;
        }
    };
    let suspects = verdict::suspects(&alone.outcomes, &together.outcomes);
    if suspects.is_empty() {
        return check;
    }
    let per_filter: Vec<_> = if foreign.len() == 1 {
        vec![together.outcomes.clone()]
    } else {
        foreign
            .iter()
            .map(|f| run(layers(&[f])).map(|j| j.outcomes).unwrap_or_default())
            .collect()
    };
    check.drops = verdict::messages(&foreign, &verdict::attribute(&suspects, &per_filter));
    check
}

fn names(foreign: &[Foreign]) -> String {
    foreign
        .iter()
        .map(Foreign::name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn autofw_layer(rules: &Rules) -> Layer {
    match rules {
        Rules::Nft { text } => Layer::Nft { text: text.clone() },
        Rules::Iptables { v4, v6, ipsets } => Layer::AutofwIptables {
            v4: v4.clone(),
            v6: v6.clone(),
            ipsets: ipsets.clone(),
        },
    }
}

/// The live ipsets, when a foreign iptables filter matches sets.
fn ipset_layer(live: &LiveFilters, foreign: &[Foreign]) -> Option<Layer> {
    let uses_sets = foreign.iter().any(|f| match f {
        Foreign::IptablesNft { v4, v6 } | Foreign::IptablesLegacy { v4, v6 } => {
            v4.contains("--match-set") || v6.contains("--match-set")
        }
        Foreign::NftTable { .. } => false,
    });
    let text = live.ipsets.as_ref().filter(|_| uses_sets)?;
    // autofw's own sets come with its rules.
    let foreign_sets: String = text
        .lines()
        .filter(|l| {
            !l.split_whitespace()
                .nth(1)
                .is_some_and(|n| n.starts_with("autofw-"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    Some(Layer::Ipset { text: foreign_sets })
}

fn layer_of(foreign: &Foreign) -> Layer {
    match foreign {
        Foreign::NftTable { text, .. } => Layer::Nft { text: text.clone() },
        Foreign::IptablesNft { v4, v6 } => Layer::Iptables {
            restore_v4: "iptables-nft-restore".into(),
            restore_v6: "ip6tables-nft-restore".into(),
            v4: v4.clone(),
            v6: v6.clone(),
        },
        Foreign::IptablesLegacy { v4, v6 } => Layer::Iptables {
            restore_v4: "iptables-legacy-restore".into(),
            restore_v6: "ip6tables-legacy-restore".into(),
            v4: v4.clone(),
            v6: v6.clone(),
        },
    }
}

/// Run `autofw judge` in a scratch network namespace.
fn run_judge(layers: Vec<Layer>, ports: &[(Proto, u16)]) -> anyhow::Result<Judged> {
    let plan = Plan {
        interface: uplink(),
        layers,
        probes: ports.to_vec(),
    };
    let exe = std::env::current_exe()?;
    let exe = exe.to_string_lossy();
    let out = run_tool(
        "unshare",
        &["--net", "--", &exe, "judge"],
        Some(&serde_json::to_string(&plan)?),
    )?;
    Ok(serde_json::from_str(&out)?)
}

/// The interface of the host's IPv4 default route (`eth0` when none), so
/// that rules matching it match in the scratch namespace too.
fn uplink() -> String {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    routes
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let (iface, dest) = (fields.next()?, fields.next()?);
            (dest == "00000000" && iface.len() < 16).then(|| iface.to_string())
        })
        .next()
        .unwrap_or_else(|| "eth0".to_string())
}

/// The ports a ruleset opens, as the judge probes them.
pub fn ports_of(opened: &[crate::record::OpenedPort]) -> Vec<(Proto, u16)> {
    opened.iter().map(|o| (o.proto, o.port)).collect()
}
