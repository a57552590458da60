//! Everything that changes the live firewall, by job:
//! - [`backend`]: nft and iptables (save, atomic load, exact undo, reading
//!   the live rules), and [`backend::exec`], the only place that spawns them;
//! - [`apply`]: the apply transaction: what would change, the lockout
//!   guard, the rollback window, the operator's answers, `confirm` and
//!   `rollback`, the detached watchdog, and loading the persisted rules at
//!   boot (`autofw restore`);
//! - [`other_filters`]: the host's other filters (ufw, firewalld, Docker,
//!   iptables-legacy) read back, and the judge that says what they do to
//!   autofw's rules.
//!
//! This file holds what the rest calls on either backend: load, snapshot
//! and undo, reading the live rules.

pub mod apply;
pub mod backend;
pub mod other_filters;

use crate::blocklist::SetContents;
use crate::blocklist::netlink as nft_sets;
use crate::record::{AppliedRecord, Backend, Rules};
use crate::state::StateDir;
use backend::compare::{FamilyRules, LiveRules};
use backend::{exec, iptables, nft};
use serde::{Deserialize, Serialize};

/// Why a load failed, and so where the firewall stands.
#[derive(Debug)]
pub enum LoadFailure {
    /// The rules were refused: nothing changed (one transaction per family;
    /// iptables undoes IPv4 itself when IPv6 fails).
    Rules(anyhow::Error),
    /// The rules are loaded, but the kernel refused the blocklist's
    /// elements (nft): the caller rolls back.
    Sets(anyhow::Error),
}

impl LoadFailure {
    pub fn into_error(self) -> anyhow::Error {
        match self {
            LoadFailure::Rules(e) | LoadFailure::Sets(e) => e,
        }
    }
}

/// Load `rules` into the live firewall, one transaction per family, then
/// the blocklist `sets` (nft: their elements, in one more transaction over
/// netlink). `keep` is the iptables part of the snapshot taken before,
/// which tells iptables what to keep.
pub fn load(
    rules: &Rules,
    sets: Option<&SetContents>,
    keep: Option<&iptables::Saved>,
) -> Result<(), LoadFailure> {
    match rules {
        Rules::Nft { text } => {
            nft::load(text).map_err(LoadFailure::Rules)?;
            match sets.filter(|s| !s.is_empty()) {
                Some(sets) => nft_sets::fill(sets).map_err(LoadFailure::Sets),
                None => Ok(()),
            }
        }
        Rules::Iptables { v4, v6, ipsets } => {
            iptables::load(v4, v6, ipsets.as_deref(), keep).map_err(LoadFailure::Rules)
        }
    }
}

/// The tools a backend needs, checked before anything changes.
pub fn tools(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Nft => &["nft"],
        Backend::Iptables => &iptables::TOOLS,
    }
}

/// The blocklist sets as autofw last loaded them (apply or refresh), when
/// the record says they are live: `applied-sets.txt`, checked against the
/// record's counts and digests. `None` otherwise (then the caller reads the
/// kernel). Reading the kernel is exact but costs about 0.6 s at a million
/// elements even spread over 64 hash sets (the kernel restarts a set's walk
/// for every 32 KiB dump message; docs/design.md); apply and refresh run under the apply
/// lock, and only they change these sets, so the record is what is live
/// unless someone edited the sets by hand, which `status` reports and
/// refresh's fallback repairs.
pub fn recorded_sets(state: &crate::state::StateDir) -> Option<SetContents> {
    let record = state.read_applied().ok()??;
    let blocklist = record.blocklist.as_ref()?;
    if record.rolled_back_at().is_some() || !nft::autofw_table_exists().ok()? {
        return None;
    }
    let path = state.applied_sets_path();
    let text = std::fs::read_to_string(&path).ok()?;
    let sets = SetContents::parse_text(&text, &path.display().to_string()).ok()?;
    (sets.summaries() == blocklist.sets).then_some(sets)
}

/// Read what the live firewall holds of autofw's rules, and how the applied
/// rules list once loaded, for the backend the record names.
/// How nft lists `text` once loaded (what the live table is compared
/// with). Listing it takes a scratch namespace (`nft::canonical`, about
/// 0.1 s on a loaded host), so the listing is kept in the state directory
/// (`applied-listing.json`) under a digest of the text, and taken from there
/// only when it is exactly the live table's listing: then the table is as
/// applied, whatever nft's version. Any difference (drift, or an nft that
/// lists differently since an upgrade) lists the text again, so a kept
/// listing can never make a change, or a false one, out of a format. Only a
/// cache: one that cannot be written costs the next status a namespace.
fn expected_listing(state: Option<&StateDir>, text: &str, live: &str) -> Option<String> {
    #[derive(Serialize, Deserialize)]
    struct Listed {
        key: String,
        listing: String,
    }
    let key = other_filters::filters::digest(text);
    if let Some(Ok(Some(kept))) = state.map(|s| s.read_applied_listing::<Listed>())
        && kept.key == key
        && kept.listing == live
    {
        return Some(kept.listing);
    }
    let listing = nft::canonical(text)?;
    if let Some(state) = state.filter(|s| s.root().is_dir()) {
        let _ = state.write_applied_listing(&Listed {
            key,
            listing: listing.clone(),
        });
    }
    Some(listing)
}

pub fn read_live(record: &AppliedRecord, cache: Option<&StateDir>) -> anyhow::Result<LiveRules> {
    match &record.rules {
        Rules::Nft { text } => {
            exec::require_tools(&["nft"])?;
            let table = nft::live_autofw_table()?;
            // Only worth a scratch namespace when there is a table to compare.
            let expected = match &table {
                Some(live) => expected_listing(cache, text, live),
                None => None,
            };
            Ok(LiveRules::Nft { table, expected })
        }
        Rules::Iptables { v4, v6, ipsets } => {
            exec::require_tools(&iptables::TOOLS)?;
            let expected = iptables::canonical(v4, v6, ipsets.as_deref());
            let (expected_v4, expected_v6) = match expected {
                Some((v4, v6)) => (Some(v4), Some(v6)),
                None => (None, None),
            };
            Ok(LiveRules::Iptables(vec![
                FamilyRules {
                    name: "iptables".to_string(),
                    live: iptables::save_family(iptables::V4)?,
                    applied: v4.clone(),
                    expected: expected_v4,
                },
                FamilyRules {
                    name: "ip6tables".to_string(),
                    live: iptables::save_family(iptables::V6)?,
                    applied: v6.clone(),
                    expected: expected_v6,
                },
            ]))
        }
    }
}
