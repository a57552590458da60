//! Other packet filters on the host, which also decide: ufw, firewalld,
//! `/etc/nftables.conf`, an old script's iptables rules, iptables-legacy
//! tables (docs/foreign.md).
//!
//! - [`filters`]: what they are and what they are called, pure;
//! - [`judge`]: the hidden `autofw judge`, which loads them with autofw's
//!   rules into a scratch network namespace and probes every opened port;
//! - [`verdict`]: probes → who drops what, in words, pure;
//! - this file: the edges, reading the live filters and running the judge.

pub(crate) mod filters;
pub(crate) mod judge;
pub(crate) mod verdict;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use crate::firewall::backend::exec::{run_tool, tool_exists};
use crate::propose::{Format, Proposal};
use crate::record::{Backend, Opening, Rules};
use crate::state::StateDir;
use filters::{Foreign, LiveFilters};
use judge::{JudgeRequest, Judged, Layer};
pub(crate) use verdict::ForeignDrop;
use verdict::{PortJudgement, Probe, Verdict};

/// autofw's own table, which is never foreign.
const AUTOFW_TABLE: &str = "inet autofw";

/// What the other filters do to autofw's rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Check {
    /// Each filter that drops or rejects ports autofw opens.
    pub drops: Vec<ForeignDrop>,
    /// iptables-legacy tables with rules, summed up (scan's note).
    pub legacy: Vec<String>,
    /// What could not be judged, and why.
    pub notes: Vec<String>,
    /// How each opened port was judged, per family (empty when there was
    /// nothing to judge).
    pub ports: Vec<PortJudgement>,
    /// Where the verdict comes from.
    pub verdict: Origin,
    /// The digest of what a verdict made now judged: [`Check::keep`]
    /// stores it under this key.
    key: Option<String>,
}

/// Where a [`Check`]'s verdict comes from: `other_filters.verdict` in
/// `status --json` and `apply --json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Origin {
    /// No other filter, or no opened port: nothing to judge.
    #[default]
    NotNeeded,
    /// Judged now, in a scratch namespace.
    Judged,
    /// The state directory's cached verdict: nothing it judged changed.
    Cached,
    /// The check could not be made (the notes say why).
    Unchecked,
}

/// What the state directory keeps of a verdict (`other-filters.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    /// A digest of everything judged: the other filters' rules (without
    /// counters and timestamps), autofw's rules, the probes, the uplink's
    /// name and this autofw's version.
    key: String,
    drops: Vec<ForeignDrop>,
    notes: Vec<String>,
    ports: Vec<PortJudgement>,
}

/// The `other_filters` part of `status --json` and `apply --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Report {
    pub verdict: Origin,
    pub ports: Vec<PortJudgement>,
}

impl Check {
    /// Nothing judged, only the legacy tables summed up.
    pub(crate) fn legacy_only(legacy: Vec<String>) -> Check {
        Check {
            legacy,
            ..Check::default()
        }
    }

    /// Keep a verdict judged now in `state` (`other-filters.json`) for the
    /// next check of the same filters, rules and probes. Only a cache: a
    /// state directory that cannot be written (read-only, full, not there)
    /// costs the next check one more judging, nothing else.
    pub(crate) fn keep(&self, state: &StateDir) {
        let (Origin::Judged, Some(key)) = (self.verdict, &self.key) else {
            return;
        };
        if state.root().is_dir() {
            let _ = state.write_judged(&Cached {
                key: key.clone(),
                drops: self.drops.clone(),
                notes: self.notes.clone(),
                ports: self.ports.clone(),
            });
        }
    }

    pub(crate) fn report(&self) -> Report {
        Report {
            verdict: self.verdict,
            ports: self.ports.clone(),
        }
    }
}

impl Check {
    /// Warnings for propose and apply: the drops, then legacy tables that
    /// drop nothing autofw opens (still worth knowing: they are invisible).
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .drops
            .iter()
            .map(|d| format!("{}; to resolve it: {}", d.message, d.fix))
            .collect();
        out.extend(verdict::by_rule_note(&self.ports));
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
pub(crate) fn live_filters() -> anyhow::Result<LiveFilters> {
    // A failing save reads as no rules (a kernel without that family), but
    // once more first: a dump can be interrupted on a busy host, and a
    // filter missed here is a drop propose never warns about.
    let save = |tool: &str| {
        if tool_exists(tool) {
            run_tool(tool, &[], None)
                .or_else(|_| run_tool(tool, &[], None))
                .unwrap_or_default()
        } else {
            String::new()
        }
    };
    let iptables_nft = [save("iptables-nft-save"), save("ip6tables-nft-save")];
    let nft_ruleset = if tool_exists("nft") {
        Some(native_tables(&iptables_nft)?)
    } else {
        None
    };
    let (legacy, legacy_unreadable) = read_legacy();
    // The sets matter only to iptables rules that match one (`ipset_layer`):
    // without such a rule, one process less.
    let matches_sets = iptables_nft
        .iter()
        .chain(&legacy)
        .any(|save| save.contains("--match-set"));
    let ipsets = if matches_sets && tool_exists("ipset") {
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

/// The native nft tables that can filter (`filters::native_tables`: not
/// autofw's, not iptables-nft's, with an input or prerouting base chain),
/// with their set elements, as `nft -s list ruleset` lists them: one `nft
/// list table` each, found in the terse listing. autofw's table is never
/// foreign, and a million-entry blocklist in it would cost nft 6 s and 360
/// MB to list (docs/propose.md); iptables-nft's tables are judged from
/// `iptables-nft-save`, and listing them through nft (which translates
/// every xt match) took 200 ms on a loaded KVM host. A table gone between
/// the two listings filters nothing any more.
fn native_tables(iptables_nft: &[String; 2]) -> anyhow::Result<String> {
    let terse = crate::firewall::backend::nft::live_ruleset()?;
    let mut out = String::new();
    for table in filters::native_tables(&terse, iptables_nft, AUTOFW_TABLE) {
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
pub(crate) fn legacy_notes() -> Vec<String> {
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
pub(crate) fn proposal_warnings(proposal: &Proposal, format: Format) -> Vec<String> {
    let backend = Backend::for_format(format);
    let openings = crate::record::openings(proposal.ruleset());
    check(&Rules::render(proposal, backend), &openings, None).warnings()
}

/// Legacy tables with rules, summed up (root only; empty otherwise).
pub(crate) fn legacy_summary() -> Vec<String> {
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
/// loaded already), judged by the kernel in scratch namespaces. `openings`
/// are where the rules admit new connections. With `cache`, a verdict on
/// exactly the same filters, rules and probes is taken from that state
/// directory instead of judged again ([`Check::keep`] keeps a new one). Needs
/// root; without it, or without the tools, the check says why it was not
/// made.
pub(crate) fn check(rules: &Rules, openings: &[Opening], cache: Option<&StateDir>) -> Check {
    let mut check = Check::default();
    if !rustix::process::geteuid().is_root() {
        return check;
    }
    let live = match live_filters() {
        Ok(live) => live,
        Err(err) => {
            check.verdict = Origin::Unchecked;
            check.notes.push(format!(
                "the host's other filters could not be read: {err:#}"
            ));
            return check;
        }
    };
    check.legacy = filters::legacy_summary(&live);
    let foreign = filters::foreign(&live, AUTOFW_TABLE);
    if foreign.is_empty() || openings.is_empty() {
        return check;
    }
    if let Some(missing) = judge::TOOLS.iter().find(|t| !tool_exists(t)) {
        check.verdict = Origin::Unchecked;
        check.notes.push(format!(
            "the other filters ({}) were not checked against autofw's rules: `{missing}` is not \
             installed",
            names(&foreign)
        ));
        return check;
    }
    let interface = uplink();
    let (probes, by_rule) =
        verdict::scratch_reach(openings, &interface, judge::CLIENT, judge::SERVER);
    let autofw = autofw_layer(rules);
    let sets = ipset_layer(&live, &foreign);
    let every_layer: Vec<Layer> = sets
        .iter()
        .cloned()
        .chain(foreign.iter().map(layer_of))
        .chain([autofw.clone()])
        .collect();
    let key = cache_key(&every_layer, &probes, &interface);
    if let Some(cached) = cache
        .and_then(|state| state.read_judged::<Cached>().ok().flatten())
        .filter(|c| c.key == key)
    {
        check.drops = cached.drops;
        check.notes = cached.notes;
        check.ports = cached.ports;
        check.verdict = Origin::Cached;
        return check;
    }
    check.ports = by_rule;
    check.verdict = Origin::Judged;
    judge_now(&mut check, &foreign, sets, &autofw, &probes, &interface);
    check.key = Some(key);
    check
}

/// A digest of everything a verdict depends on (see [`Cached::key`]).
fn cache_key(layers: &[Layer], probes: &[Probe], interface: &str) -> String {
    let mut judged = format!(
        "autofw {} deadline {}ms interface {interface}\nprobes {}\n",
        env!("CARGO_PKG_VERSION"),
        judge::DEADLINE.as_millis(),
        serde_json::to_string(probes).unwrap_or_default()
    );
    for layer in layers {
        let (kind, texts): (&str, Vec<Cow<str>>) = match layer {
            Layer::Nft { text } => ("nft", vec![text.into()]),
            Layer::Ipset { text } => ("ipset", vec![text.into()]),
            Layer::Iptables {
                restore_v4,
                restore_v6,
                v4,
                v6,
            } => (
                "iptables",
                [restore_v4, v4, restore_v6, v6].map(|t| t.into()).into(),
            ),
            Layer::Autofw { rules } => crate::firewall::backend::keyed_texts(rules),
        };
        judged.push_str(&format!("--- {kind}\n"));
        for text in texts {
            judged.push_str(&filters::stable(&text));
            judged.push_str("--\n");
        }
    }
    filters::digest(&judged)
}

/// Judge in scratch namespaces: autofw's rules with every other filter,
/// then, only when that stops a probe, alone, then with each filter.
fn judge_now(
    check: &mut Check,
    foreign: &[Foreign],
    sets: Option<Layer>,
    autofw: &Layer,
    probes: &[Probe],
    interface: &str,
) {
    if probes.is_empty() {
        return;
    }
    let layers = |filters: &[&Foreign]| -> Vec<Layer> {
        let mut layers: Vec<Layer> = sets.iter().cloned().collect();
        layers.extend(filters.iter().map(|f| layer_of(f)));
        layers.push(autofw.clone());
        layers
    };
    let run = |layers: Vec<Layer>| run_judge(layers, probes, interface);
    let unchecked = |check: &mut Check, err: anyhow::Error| {
        check.verdict = Origin::Unchecked;
        check.notes.push(format!(
            "the other filters ({}) could not be checked against autofw's rules in a scratch \
             network namespace: {err:#}",
            names(foreign)
        ));
    };
    let all: Vec<&Foreign> = foreign.iter().collect();
    let together = match run(layers(&all)) {
        Ok(together) => together,
        Err(err) => return unchecked(check, err),
    };
    check
        .ports
        .extend(together.outcomes.iter().map(PortJudgement::probed));
    check.ports.sort_by_key(|p| (p.port, p.proto, p.family));
    for error in &together.load_errors {
        check.notes.push(format!(
            "part of the other filters could not be loaded into the scratch namespace, so the \
             check of what they drop is incomplete: {error}"
        ));
    }
    // Only a port the whole host stops can be a foreign drop: when every
    // probe got in, autofw's rules alone need no judging of their own.
    if together.outcomes.iter().all(|o| o.verdict == Verdict::Open) {
        return;
    }
    let alone = match run(layers(&[])) {
        Ok(alone) => alone,
        Err(err) => return unchecked(check, err),
    };
    let suspects = verdict::suspects(&alone.outcomes, &together.outcomes);
    if suspects.is_empty() {
        return;
    }
    let mut per_filter = Vec::new();
    if foreign.len() == 1 {
        per_filter.push(together.outcomes.clone());
    } else {
        for f in foreign {
            match run(layers(&[f])) {
                Ok(judged) => per_filter.push(judged.outcomes),
                Err(err) => return unchecked(check, err),
            }
        }
    }
    check.drops = verdict::messages(foreign, &verdict::attribute(&suspects, &per_filter));
}

fn names(foreign: &[Foreign]) -> String {
    foreign
        .iter()
        .map(Foreign::name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn autofw_layer(rules: &Rules) -> Layer {
    Layer::Autofw {
        rules: rules.clone(),
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
fn run_judge(layers: Vec<Layer>, probes: &[Probe], interface: &str) -> anyhow::Result<Judged> {
    let plan = JudgeRequest {
        interface: interface.to_string(),
        layers,
        probes: probes.to_vec(),
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
