//! The nftables backend: save the live ruleset, load autofw's table in one
//! transaction, and undo exactly what autofw changed.
//!
//! autofw owns one table, `table inet autofw`, and nothing else. Undoing an
//! apply therefore means putting that one table back as it was (deleting it
//! when there was none), never reloading the whole saved ruleset: a full
//! `flush ruleset` + reload would wipe whatever Docker, libvirt or fail2ban
//! added during the window. When a previous autofw table exists, it is
//! emptied and refilled *in place*, so it keeps its position among the
//! tables and `nft -t -s list ruleset` comes back byte for byte (deleting and
//! re-creating it would move it after every other table).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::exec::run_tool;
use crate::error::host_failure;

pub(crate) use crate::propose::render_nft::{FAMILY, TABLE, replacing};

/// What the nft backend needs to undo an apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Saved {
    /// `nft -t -s list table inet autofw` before the apply (set elements
    /// are kept apart, see `Snapshot::sets_file`); `None` when the table
    /// did not exist.
    pub autofw_table: Option<String>,
}

/// `nft -t -s list ruleset`: the whole live ruleset without counters and
/// without set elements (a blocklist's million elements are compared by
/// count and digest, [`crate::blocklist::netlink`], not listed as text).
pub(crate) fn live_ruleset() -> anyhow::Result<String> {
    run_tool("nft", &["-t", "-s", "list", "ruleset"], None)
}

/// The whole ruleset as `nft -j -t` lists it: every object with its handle,
/// no set elements.
///
/// Always `list ruleset` with `-t`: nft 1.0.6 fetches every set element
/// for `list tables` and `list table` even under `-t` (a million-entry
/// blocklist makes those 60 s and 640 MB), but not for a terse
/// `list ruleset` (10 ms, 5 MB, measured; docs/propose.md).
pub(crate) fn terse_ruleset_json() -> anyhow::Result<Value> {
    let json = run_tool("nft", &["-j", "-t", "list", "ruleset"], None)?;
    serde_json::from_str(&json)
        .map_err(|e| host_failure(format!("cannot parse `nft -j -t list ruleset`: {e}")))
}

/// Does `table inet autofw` exist? Asked through JSON so that no message
/// text is parsed.
pub(crate) fn autofw_table_exists() -> anyhow::Result<bool> {
    Ok(has_autofw_table(&terse_ruleset_json()?))
}

/// Does this `nft -j` listing hold `table inet autofw`?
fn has_autofw_table(ruleset_json: &Value) -> bool {
    objects(ruleset_json)
        .any(|(kind, obj)| kind == "table" && obj["family"] == FAMILY && obj["name"] == TABLE)
}

/// The live autofw table as `nft -t -s` lists it (no counters, no set
/// elements), if it exists: its block of `nft -t -s list ruleset` (see
/// [`terse_ruleset_json`] for why not `list table`).
pub(crate) fn live_autofw_table() -> anyhow::Result<Option<String>> {
    Ok(table_block(&live_ruleset()?))
}

/// The `table inet autofw { ... }` block of a ruleset listing: from its
/// opening line to the `}` that closes it at the start of a line.
pub(crate) fn table_block(ruleset: &str) -> Option<String> {
    let open = format!("table {FAMILY} {TABLE} {{");
    let mut out = String::new();
    let mut inside = false;
    for line in ruleset.lines() {
        if !inside && line == open {
            inside = true;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
            if line == "}" {
                return Some(out);
            }
        }
    }
    None
}

/// What undo needs, from `nft -t -s list ruleset` taken before the apply.
pub(crate) fn save(ruleset: &str) -> Saved {
    Saved {
        autofw_table: table_block(ruleset),
    }
}

/// Load autofw's table (its definition, `record::Rules::Nft`) in one
/// transaction. When the table exists it is emptied in place first, so it
/// keeps its position (see the module doc); otherwise the script replaces
/// it ([`replacing`]). Either way it is one `nft -f`: on error nothing
/// changed and nft's message is returned.
pub(crate) fn load(table: &str) -> anyhow::Result<()> {
    let live = terse_ruleset_json()?;
    let script = if has_autofw_table(&live) {
        format!("{}{table}", clear_commands(&live)?)
    } else {
        replacing(table)
    };
    run_tool("nft", &["-f", "-"], Some(&script)).map(|_| ())
}

/// Put `table inet autofw` back as it was before the apply.
pub(crate) fn restore(saved: &Saved) -> anyhow::Result<()> {
    let live = terse_ruleset_json()?;
    let script = match (&saved.autofw_table, has_autofw_table(&live)) {
        (None, false) => return Ok(()),
        // Creating then deleting in one transaction is nft's idiom for
        // "delete if it exists".
        (None, true) => format!("table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"),
        (Some(before), true) => format!("{}{before}", clear_commands(&live)?),
        (Some(before), false) => before.clone(),
    };
    run_tool("nft", &["-f", "-"], Some(&script)).map(|_| ())
}

/// How nft itself will list the proposal: load it into a throwaway network
/// namespace (`unshare --net`) and list it there. This is what the dry-run
/// diff compares with the live table, so the diff shows real changes, not
/// formatting. `None` when no scratch namespace can be made (then the caller
/// diffs the proposal text as written).
pub(crate) fn canonical(proposal: &str) -> Option<String> {
    run_tool(
        "unshare",
        &[
            "--net",
            "--",
            "sh",
            "-c",
            "nft -f - && nft -t -s list table inet autofw",
        ],
        Some(proposal),
    )
    .ok()
}

/// Commands that empty autofw's table of this `nft -j` listing without
/// deleting it: flush its rules, then delete every set, map, stateful
/// object, flowtable and chain by handle (handles need no quoting). Rules go
/// first, so nothing still refers to a chain or set when it is deleted;
/// chains go last, after the verdict maps that may jump to them.
pub(crate) fn clear_commands(ruleset_json: &Value) -> anyhow::Result<String> {
    let mut first = Vec::new();
    let mut chains = Vec::new();
    let ours = |obj: &Value| obj["family"] == FAMILY && obj["table"] == TABLE;
    for (kind, obj) in objects(ruleset_json).filter(|(_, obj)| ours(obj)) {
        let keyword = match kind {
            "set" | "map" | "flowtable" | "counter" | "quota" | "limit" | "secmark"
            | "synproxy" | "ct helper" | "ct timeout" | "ct expectation" => kind,
            "chain" => "chain",
            _ => continue,
        };
        let handle = obj["handle"]
            .as_u64()
            .ok_or_else(|| host_failure(format!("`nft -j` listed a {kind} without a handle")))?;
        let line = format!("delete {keyword} {FAMILY} {TABLE} handle {handle}\n");
        if kind == "chain" {
            chains.push(line);
        } else {
            first.push(line);
        }
    }
    let mut out = format!("flush table {FAMILY} {TABLE}\n");
    out.extend(first);
    out.extend(chains);
    Ok(out)
}

/// `(kind, object)` of every entry of an `nft -j` listing: `("table", {...})`.
pub(crate) fn objects(value: &Value) -> impl Iterator<Item = (&str, &Value)> {
    value["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.as_object())
        .flat_map(|map| map.iter().map(|(k, v)| (k.as_str(), v)))
}

/// `autofw disable` (and an apply with the iptables backend): delete
/// `table inet autofw`, with its sets, if it exists. One `nft -f`. Returns
/// whether there was one.
pub(crate) fn remove_table() -> anyhow::Result<bool> {
    if !has_autofw_table(&terse_ruleset_json()?) {
        return Ok(false);
    }
    let script = format!("table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n");
    run_tool("nft", &["-f", "-"], Some(&script))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_rules_then_sets_then_chains_by_handle() {
        let json: Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "autofw", "handle": 1}},
            {"set": {"family": "inet", "name": "bl", "table": "autofw", "handle": 11}},
            {"chain": {"family": "inet", "table": "autofw", "name": "input", "handle": 9}},
            {"map": {"family": "inet", "name": "vm", "table": "autofw", "handle": 15}},
            {"rule": {"family": "inet", "table": "autofw", "chain": "input", "handle": 12}},
            {"set": {"family": "inet", "name": "f2b", "table": "fail2ban", "handle": 3}},
            {"chain": {"family": "ip", "table": "autofw", "name": "input", "handle": 4}}]}"#,
        )
        .unwrap();
        assert_eq!(
            clear_commands(&json).unwrap(),
            "flush table inet autofw\n\
             delete set inet autofw handle 11\n\
             delete map inet autofw handle 15\n\
             delete chain inet autofw handle 9\n"
        );
    }

    #[test]
    fn finds_autofw_table_block_in_a_ruleset() {
        let text = "table ip nat {\n\tchain x {\n\t}\n}\ntable inet autofw {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n}\ntable inet other {\n}\n";
        assert_eq!(
            table_block(text).unwrap(),
            "table inet autofw {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n}\n"
        );
        assert_eq!(table_block("table ip nat {\n}\n"), None);
    }
}
