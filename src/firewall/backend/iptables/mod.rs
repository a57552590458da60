//! The iptables backend, for hosts without nftables: `iptables-restore` and
//! `ip6tables-restore --noflush` of propose's text, one transaction per
//! family, and an undo that touches only what autofw wrote.
//!
//! autofw owns the `AUTOFW-*` chains of the filter table, the one jump
//! `-j AUTOFW-INPUT` in INPUT (placed by [`input_order`] before the first
//! foreign rule that can accept), and the policies of the built-in chains
//! it sets; on a host that routes, the published-ports guard
//! `AUTOFW-PUBLISHED` in the mangle table and its one jump from mangle's
//! FORWARD. Undo puts exactly those back as saved, by `--noflush` restore,
//! so Docker's DOCKER-* chains and fail2ban's f2b-* chains are never
//! flushed, and a policy another tool set in the window stays.
//! (Restoring a whole `iptables-save` instead is what iptables-apply does:
//! on a fresh host the save is empty, restoring it changes nothing and the
//! new rules stay. That is a lockout.)
//!
//! On iptables-nft the kernel side is an nft table: when autofw's rules were
//! the first to create `table ip filter` or one of its base chains, undo
//! deletes what is then empty and accepts everything, so that
//! `nft -t -s list ruleset` also comes back as it was.

pub(crate) mod filter_view;
pub(crate) mod input_order;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use super::exec::{run_tool, tool_exists};
use crate::error::host_failure;
use crate::propose::render_iptables::{Hooks, Script};
use filter_view::{FilterView, PolicyUndo, live_fit, undo_script};

/// One address family's tools.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FamilyTools {
    pub save: &'static str,
    pub restore: &'static str,
    /// The nft family iptables-nft uses for it.
    pub nft: &'static str,
}

pub(crate) const V4: FamilyTools = FamilyTools {
    save: "iptables-save",
    restore: "iptables-restore",
    nft: "ip",
};
pub(crate) const V6: FamilyTools = FamilyTools {
    save: "ip6tables-save",
    restore: "ip6tables-restore",
    nft: "ip6",
};

/// The tools this backend runs.
pub(crate) const TOOLS: [&str; 4] = [
    "iptables-save",
    "iptables-restore",
    "ip6tables-save",
    "ip6tables-restore",
];

/// What the iptables backend needs to undo an apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Saved {
    /// `iptables-save -t filter` and `-t mangle` before the apply
    /// ([`save_family`]; snapshots from before the guard moved to mangle
    /// hold the filter table alone).
    pub v4: String,
    /// The same of `ip6tables-save`.
    pub v6: String,
    /// On iptables-nft with nft installed: the `family table` and
    /// `family table chain` names that existed before, so undo can remove
    /// the empty ones the apply created. `None` on iptables-legacy.
    pub nft_objects: Option<BTreeSet<String>>,
    /// `ipset save` of autofw's blocklist sets (`autofw-*`) that existed
    /// before; `None` when ipset is not installed.
    #[serde(default)]
    pub ipsets: Option<String>,
    /// The built-in chain policies the loaded rules set, per family: the
    /// only policies undo may put back. `None` in a snapshot from an autofw
    /// that did not record them (then every policy that differs is put back).
    #[serde(default)]
    pub policies_set: Option<PoliciesSet>,
    /// Whether IP forwarding was on when the snapshot was taken.
    #[serde(default)]
    pub forwarding: Option<Forwarding>,
}

/// Built-in chain → policy, as the loaded `iptables-restore` text declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PoliciesSet {
    pub v4: BTreeMap<String, String>,
    pub v6: BTreeMap<String, String>,
}

impl PoliciesSet {
    /// The policies the rules of each family set.
    pub(crate) fn of(v4: &Script, v6: &Script) -> PoliciesSet {
        PoliciesSet {
            v4: FilterView::parse(&v4.filter).policies,
            v6: FilterView::parse(&v6.filter).policies,
        }
    }

    /// Every built-in chain's policy ACCEPT, in both families: what
    /// removing autofw's iptables rules leaves.
    pub(crate) fn all_accept() -> PoliciesSet {
        let accept: BTreeMap<String, String> = ["INPUT", "FORWARD", "OUTPUT"]
            .into_iter()
            .map(|chain| (chain.to_string(), "ACCEPT".to_string()))
            .collect();
        PoliciesSet {
            v4: accept.clone(),
            v6: accept,
        }
    }
}

/// `net.ipv4.ip_forward` and `net.ipv6.conf.all.forwarding`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Forwarding {
    pub v4: bool,
    pub v6: bool,
}

impl Forwarding {
    fn read() -> Forwarding {
        let on = |path: &str| std::fs::read_to_string(path).is_ok_and(|v| v.trim() != "0");
        Forwarding {
            v4: on("/proc/sys/net/ipv4/ip_forward"),
            v6: on("/proc/sys/net/ipv6/conf/all/forwarding"),
        }
    }
}

/// What autofw reads of one family: `iptables-save -t filter`, then `-t
/// mangle` (the published-ports guard's table). Neither creates its table
/// when it does not exist. A mangle table that cannot be read (a legacy
/// kernel without `iptable_mangle`) reads as empty: nothing of autofw's can
/// be there, and loading a guard there fails on its own, with the tool's
/// words.
pub(crate) fn save_family(family: FamilyTools) -> anyhow::Result<String> {
    let mut save = run_tool(family.save, &["-t", "filter"], None)?;
    if let Ok(mangle) = run_tool(family.save, &["-t", "mangle"], None) {
        save.push_str(&mangle);
    }
    Ok(save)
}

/// Save the live filter tables before loading rules that set `policies`.
pub(crate) fn save(policies: PoliciesSet) -> anyhow::Result<Saved> {
    Ok(Saved {
        policies_set: Some(policies),
        forwarding: Some(Forwarding::read()),
        v4: save_family(V4)?,
        v6: save_family(V6)?,
        nft_objects: if uses_nf_tables()? {
            Some(nft_objects()?)
        } else {
            None
        },
        ipsets: if tool_exists("ipset") {
            Some(save_autofw_ipsets()?)
        } else {
            None
        },
    })
}

/// Names of the live ipsets autofw owns (`autofw-*`).
fn autofw_ipset_names() -> anyhow::Result<Vec<String>> {
    Ok(run_tool("ipset", &["list", "-n"], None)?
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with("autofw-"))
        .map(str::to_string)
        .collect())
}

fn save_autofw_ipsets() -> anyhow::Result<String> {
    let mut out = String::new();
    for name in autofw_ipset_names()? {
        out.push_str(&run_tool("ipset", &["save", &name], None)?);
    }
    Ok(out)
}

/// Put autofw's ipsets back as saved: sets that did not exist are destroyed
/// (the rules that matched them are gone by now), the others refilled.
fn restore_ipsets(saved: &str) -> anyhow::Result<()> {
    let existed: Vec<&str> = saved
        .lines()
        .filter_map(|l| l.strip_prefix("create "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in autofw_ipset_names()? {
        if existed.contains(&name.as_str()) {
            run_tool("ipset", &["flush", &name], None)?;
        } else {
            run_tool("ipset", &["destroy", &name], None)?;
        }
    }
    if !saved.trim().is_empty() {
        run_tool("ipset", &["restore", "-exist"], Some(saved))?;
    }
    Ok(())
}

/// Load both families. Each is checked with `--test` first; then v4 and v6
/// are loaded, and if v6 fails after v4 succeeded, v4 is put back from
/// `saved` so the host is never left half-changed.
///
/// The blocklist ipsets, if any, are loaded first (the rules match them);
/// `ipset restore -exist` creates or refills them.
pub(crate) fn load(
    v4: &Script,
    v6: &Script,
    ipsets: Option<&str>,
    saved: Option<&Saved>,
) -> anyhow::Result<()> {
    if let Some(sets) = ipsets {
        super::exec::require_tools(&["ipset"])?;
        run_tool("ipset", &["restore", "-exist"], Some(sets))?;
    }
    let v4 = v4.render(Hooks::Live(&live_fit(&save_family(V4)?)));
    let v6 = v6.render(Hooks::Live(&live_fit(&save_family(V6)?)));
    let loaded = run_tool(V4.restore, &["--test", "--noflush"], Some(&v4))
        .and_then(|_| run_tool(V6.restore, &["--test", "--noflush"], Some(&v6)))
        .and_then(|_| run_tool(V4.restore, &["--noflush"], Some(&v4)));
    let loaded = match loaded {
        Ok(_) => run_tool(V6.restore, &["--noflush"], Some(&v6)).inspect_err(|_| {
            if let Some(saved) = saved {
                let set = saved.policies_set.as_ref().map(|s| &s.v4);
                let policies = PolicyUndo {
                    set,
                    forwarding_turned_on: false,
                };
                let _ = restore_family(V4, &saved.v4, policies);
            }
        }),
        Err(err) => Err(err),
    };
    if let Err(err) = loaded {
        // The ipsets were refilled before the rules failed: put them back.
        if let (Some(_), Some(Some(sets))) = (ipsets, saved.map(|s| &s.ipsets)) {
            let _ = restore_ipsets(sets);
        }
        return Err(err);
    }
    Ok(())
}

/// The live INPUT rules, in both families, that accept before autofw's jump
/// (so what they match bypasses autofw), said as warnings.
pub(crate) fn accepts_before_jump() -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for (family, name) in [(V4, "iptables"), (V6, "ip6tables")] {
        for accept in input_order::accepts_before_jump(&save_family(family)?) {
            found.push(accept.describe(name));
        }
    }
    Ok(found)
}

/// Put autofw's chains, jump and policies back as saved, in both families,
/// then remove empty leftovers iptables-nft created. A built-in chain's
/// policy goes back only if autofw set it and it is still as set; a FORWARD
/// DROP stays where the family's forwarding was turned on in the window.
pub(crate) fn restore(saved: &Saved) -> anyhow::Result<()> {
    let (then, now) = (saved.forwarding, Forwarding::read());
    let sets = saved.policies_set.as_ref();
    for (family, text, set, turned_on) in [
        (
            V4,
            &saved.v4,
            sets.map(|s| &s.v4),
            then.is_some_and(|t| !t.v4 && now.v4),
        ),
        (
            V6,
            &saved.v6,
            sets.map(|s| &s.v6),
            then.is_some_and(|t| !t.v6 && now.v6),
        ),
    ] {
        let policies = PolicyUndo {
            set,
            forwarding_turned_on: turned_on,
        };
        restore_family(family, text, policies)?;
    }
    if let Some(sets) = &saved.ipsets {
        restore_ipsets(sets)?;
    }
    if let Some(before) = &saved.nft_objects {
        remove_created_empty(before)?;
    }
    Ok(())
}

fn restore_family(family: FamilyTools, saved: &str, policies: PolicyUndo) -> anyhow::Result<()> {
    let live = save_family(family)?;
    if let Some(script) = undo_script(saved, &live, policies) {
        run_tool(family.restore, &["--noflush"], Some(&script))?;
    }
    Ok(())
}

/// How `iptables-save -t filter -t mangle` ([`save_family`]) and the same
/// of `ip6tables-save` list `v4` and `v6` once loaded: restore them in a throwaway network namespace
/// (`unshare --net`) and save them there. `iptables-save` spells rules its
/// own way (`-m tcp`, unquoted comments, `5/sec`), so this is what `status`
/// compares the live chains with. The blocklist ipsets the rules match are
/// created there empty (only their `create` lines are passed): the rules
/// need them to exist, not their elements. `None` when no scratch namespace
/// can be made, or the text is too large to pass as an argument.
pub(crate) fn canonical(
    v4: &Script,
    v6: &Script,
    ipsets: Option<&str>,
) -> Option<(String, String)> {
    /// Linux caps one argument at 128 KiB (MAX_ARG_STRLEN).
    const MAX_ARG: usize = 120 * 1024;
    const SPLIT: &str = "#autofw-ip6tables-save";
    let empty = live_fit("");
    let (v4, v6) = (
        &v4.render(Hooks::Live(&empty)),
        &v6.render(Hooks::Live(&empty)),
    );
    let creates: String = ipsets
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("create "))
        .map(|l| format!("{l}\n"))
        .collect();
    if [v4, v6, creates.as_str()].iter().any(|a| a.len() > MAX_ARG) {
        return None;
    }
    let script = format!(
        "set -e\n\
         if [ -n \"$1\" ]; then printf '%s' \"$1\" | ipset restore -exist; fi\n\
         printf '%s' \"$2\" | {r4}\n\
         printf '%s' \"$3\" | {r6}\n\
         {s4} -t filter\n\
         {s4} -t mangle\n\
         echo '{SPLIT}'\n\
         {s6} -t filter\n\
         {s6} -t mangle\n",
        r4 = V4.restore,
        r6 = V6.restore,
        s4 = V4.save,
        s6 = V6.save,
    );
    let out = run_tool(
        "unshare",
        &["--net", "--", "sh", "-c", &script, "sh", &creates, v4, v6],
        None,
    )
    .ok()?;
    let (v4, v6) = out.split_once(&format!("{SPLIT}\n"))?;
    Some((v4.to_string(), v6.to_string()))
}

/// Is `iptables` the nf_tables variant (iptables-nft)?
pub(crate) fn uses_nf_tables() -> anyhow::Result<bool> {
    let version = run_tool(V4.restore, &["--version"], None)?;
    Ok(version.contains("nf_tables") && tool_exists("nft"))
}

/// `family table` and `family table chain` of every nft table and chain
/// (iptables-nft's among them), from the terse listing: `nft list chains`
/// and `list tables` would fetch every set element of the host first (see
/// [`super::nft::terse_ruleset_json`]).
fn nft_objects() -> anyhow::Result<BTreeSet<String>> {
    let value = super::nft::terse_ruleset_json()?;
    let mut set = BTreeSet::new();
    for (kind, obj) in super::nft::objects(&value) {
        let (Some(f), Some(t)) = (
            obj["family"].as_str(),
            obj["table"].as_str().or(obj["name"].as_str()),
        ) else {
            continue;
        };
        match (kind, obj["name"].as_str()) {
            ("table", _) => {
                set.insert(format!("{f} {t}"));
            }
            ("chain", Some(c)) => {
                set.insert(format!("{f} {t}"));
                set.insert(format!("{f} {t} {c}"));
            }
            _ => {}
        }
    }
    Ok(set)
}

/// Delete the filter and mangle tables and base chains that did not exist
/// before the apply and are now empty and accept everything (iptables-nft
/// created them for autofw's rules). Anything with a rule in it is left
/// alone.
fn remove_created_empty(before: &BTreeSet<String>) -> anyhow::Result<()> {
    let mut script = String::new();
    for family in [V4.nft, V6.nft] {
        for name in ["filter", "mangle"] {
            let table = format!("{family} {name}");
            let Ok(json) = run_tool("nft", &["-j", "list", "table", family, name], None) else {
                continue; // no such table now
            };
            let value: Value = serde_json::from_str(&json)
                .map_err(|e| host_failure(format!("cannot parse `nft -j list table`: {e}")))?;
            let plan = empty_leftovers(&value, &table, before.contains(&table), before);
            script.push_str(&plan);
        }
    }
    if !script.is_empty() {
        run_tool("nft", &["-f", "-"], Some(&script))?;
    }
    Ok(())
}

/// The pure part of [`remove_created_empty`] for one `nft -j list table`
/// of `table` (`ip filter`, `ip6 mangle`).
pub(crate) fn empty_leftovers(
    table_json: &Value,
    table: &str,
    table_existed: bool,
    before: &BTreeSet<String>,
) -> String {
    let mut chains = Vec::new();
    let mut busy = BTreeSet::new();
    let mut other_objects = false;
    for entry in table_json["nftables"].as_array().into_iter().flatten() {
        let Some(map) = entry.as_object() else {
            continue;
        };
        for (kind, obj) in map {
            match kind.as_str() {
                "chain" => chains.push(obj.clone()),
                "rule" => {
                    busy.insert(obj["chain"].as_str().unwrap_or_default().to_string());
                }
                "metainfo" | "table" => {}
                _ => other_objects = true,
            }
        }
    }
    let removable = |c: &Value| {
        let name = c["name"].as_str().unwrap_or_default();
        c["hook"].is_string()
            && c["policy"] == "accept"
            && !busy.contains(name)
            && !before.contains(&format!("{table} {name}"))
    };
    if !table_existed && !other_objects && chains.iter().all(removable) {
        return format!("delete table {table}\n");
    }
    chains
        .iter()
        .filter(|c| removable(c))
        .filter_map(|c| c["handle"].as_u64())
        .map(|h| format!("delete chain {table} handle {h}\n"))
        .collect()
}

/// Does either family's filter table hold autofw's chains or its jump?
pub(crate) fn has_autofw_rules() -> anyhow::Result<bool> {
    for family in [V4, V6] {
        let view = FilterView::parse(&save_family(family)?);
        if view.has_jump || !view.chains.is_empty() || view.has_docker_jump {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `autofw disable` (and an apply with the nft backend): remove autofw's
/// chains, its INPUT and DOCKER-USER jumps and its ipsets, in both
/// families, by the same `--noflush` undo that a rollback uses, against "no
/// autofw at all". Only the built-in policies autofw set (`set`, from the
/// rules it loaded; `INPUT DROP` when unknown) go back to ACCEPT: a FORWARD
/// DROP that Docker set stays. Returns whether anything was removed.
pub(crate) fn remove_autofw(set: Option<&PoliciesSet>) -> anyhow::Result<bool> {
    let input_drop: BTreeMap<String, String> = [("INPUT".to_string(), "DROP".to_string())].into();
    let mut removed = false;
    for (family, policies) in [(V4, set.map(|s| &s.v4)), (V6, set.map(|s| &s.v6))] {
        let live = save_family(family)?;
        let view = FilterView::parse(&live);
        if !view.has_jump && view.chains.is_empty() && !view.has_docker_jump {
            continue;
        }
        let undo = PolicyUndo {
            set: Some(policies.unwrap_or(&input_drop)),
            forwarding_turned_on: false,
        };
        if let Some(script) = undo_script("", &live, undo) {
            run_tool(family.restore, &["--noflush"], Some(&script))?;
            removed = true;
        }
    }
    if tool_exists("ipset") && !autofw_ipset_names()?.is_empty() {
        restore_ipsets("")?;
        removed = true;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_created_table_is_deleted_but_busy_one_is_not() {
        let json: Value = serde_json::from_str(r#"{"nftables": [{"table": {"family": "ip", "name": "filter"}},
            {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "hook": "input", "policy": "accept"}}]}"#).unwrap();
        assert_eq!(
            empty_leftovers(&json, "ip filter", false, &BTreeSet::new()),
            "delete table ip filter\n"
        );
        let before: BTreeSet<String> =
            ["ip filter".to_string(), "ip filter INPUT".to_string()].into();
        assert_eq!(empty_leftovers(&json, "ip filter", true, &before), "");
        let busy: Value = serde_json::from_str(r#"{"nftables": [{"table": {"family": "ip", "name": "filter"}},
            {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "hook": "input", "policy": "accept"}},
            {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 2}}]}"#).unwrap();
        assert_eq!(
            empty_leftovers(&busy, "ip filter", false, &BTreeSet::new()),
            ""
        );
    }
}
