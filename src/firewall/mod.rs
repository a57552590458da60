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

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::blocklist::SetContents;
use crate::blocklist::netlink as nft_sets;
use crate::error::host_failure;
use crate::record::{AppliedRecord, Backend, Rules};
use crate::state::StateDir;
use backend::compare::{FamilyRules, LiveRules};
use backend::{exec, iptables, nft};

/// Load `rules` into the live firewall, one transaction per family, then
/// the blocklist `sets` (nft: their elements, in one more transaction over
/// netlink). `saved` is the snapshot taken before, which tells iptables
/// what to keep, and what is put back if the elements are refused.
pub fn load(
    rules: &Rules,
    sets: Option<&SetContents>,
    saved: Option<&Snapshot>,
) -> anyhow::Result<()> {
    match rules {
        Rules::Nft { text } => {
            nft::load(text)?;
            let Some(sets) = sets.filter(|s| !s.is_empty()) else {
                return Ok(());
            };
            if let Err(err) = nft_sets::fill(sets) {
                let undone = match saved {
                    Some(saved) => saved
                        .restore()
                        .map(|_| "the previous rules and blocklist were put back")
                        .unwrap_or(
                            "and putting the previous rules back failed too: run `autofw rollback`",
                        ),
                    None => "the rules are loaded with empty blocklist sets",
                };
                return Err(err.context(format!("loading the blocklist failed; {undone}")));
            }
            Ok(())
        }
        Rules::Iptables { v4, v6, ipsets } => iptables::load(
            v4,
            v6,
            ipsets.as_deref(),
            saved.and_then(|s| s.iptables.as_ref()),
        ),
    }
}

/// The tools a backend needs, checked before anything changes.
pub fn tools(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Nft => &["nft"],
        Backend::Iptables => &iptables::TOOLS,
    }
}

/// The live firewall as it was before an apply: what rollback puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub backend: Backend,
    /// `nft -t -s list ruleset` before the apply, when nft is installed: the
    /// reference that a rollback is checked against, byte for byte.
    pub nft_ruleset: Option<String>,
    pub nft: Option<nft::Saved>,
    pub iptables: Option<iptables::Saved>,
    /// The elements of the live blocklist sets before the apply, kept in
    /// their own compact file (`SetContents::to_text`), not in this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sets_file: Option<PathBuf>,
}

impl Snapshot {
    /// Save what loading `rules` will change (and the whole nft ruleset, to
    /// check the rollback against): for iptables, the policies the rules
    /// set and the forwarding state, so that undo puts back only what autofw
    /// changed. The live blocklist sets' elements go to `sets_file`, if
    /// there are any.
    pub fn take(
        rules: &Rules,
        sets_file: &Path,
        recorded: Option<&SetContents>,
    ) -> anyhow::Result<Snapshot> {
        let backend = rules.backend();
        let nft_ruleset = if exec::tool_exists("nft") {
            Some(nft::live_ruleset()?)
        } else {
            None
        };
        Ok(Snapshot {
            backend,
            nft: match (backend, &nft_ruleset) {
                // One listing is both the reference and autofw's table.
                (Backend::Nft, Some(ruleset)) => Some(nft::save(ruleset)),
                (Backend::Nft, None) => Some(nft::save(&nft::live_ruleset()?)),
                (Backend::Iptables, _) => None,
            },
            nft_ruleset,
            iptables: match rules {
                Rules::Iptables { v4, v6, .. } => Some(iptables::save(v4, v6)?),
                Rules::Nft { .. } => None,
            },
            sets_file: match backend {
                Backend::Nft => save_sets(sets_file, recorded)?,
                Backend::Iptables => None,
            },
        })
    }

    /// Undo the apply: only autofw's own table, chains and policies.
    pub fn restore(&self) -> anyhow::Result<()> {
        if let Some(saved) = &self.nft {
            nft::restore(saved)?;
            if let Some(path) = &self.sets_file {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    host_failure(format!(
                        "cannot read the saved blocklist elements {}: {e}",
                        path.display()
                    ))
                })?;
                let sets =
                    SetContents::parse_text(&text, &path.display().to_string()).map_err(|e| {
                        host_failure(format!("the saved blocklist elements are damaged: {e}"))
                    })?;
                nft_sets::fill(&sets)?;
            }
        }
        if let Some(saved) = &self.iptables {
            iptables::restore(saved)?;
        }
        Ok(())
    }

    /// After a restore: does the live ruleset equal the saved one? `None`
    /// when it cannot be checked (no nft). A difference means something else
    /// changed the firewall during the window; it is reported, not undone.
    pub fn matches_live(&self) -> Option<bool> {
        let saved = self.nft_ruleset.as_ref()?;
        nft::live_ruleset().ok().map(|live| &live == saved)
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
    if record.rolled_back_at.is_some() || !nft::autofw_table_exists().ok()? {
        return None;
    }
    let path = state.applied_sets_path();
    let text = std::fs::read_to_string(&path).ok()?;
    let sets = SetContents::parse_text(&text, &path.display().to_string()).ok()?;
    (sets.summaries() == blocklist.sets).then_some(sets)
}

/// Save the live blocklist sets to `path` (when they hold anything): the
/// recorded content when there is one, else read from the kernel.
fn save_sets(path: &Path, recorded: Option<&SetContents>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(sets) = recorded {
        crate::state::write_private(path, sets.to_text().as_bytes())?;
        return Ok(Some(path.to_path_buf()));
    }
    if !nft::autofw_table_exists()? {
        return Ok(None);
    }
    match nft_sets::read_live()? {
        Some(sets) if !sets.is_empty() => {
            crate::state::write_private(path, sets.to_text().as_bytes())?;
            Ok(Some(path.to_path_buf()))
        }
        _ => Ok(None),
    }
}

/// Read what the live firewall holds of autofw's rules, and how the applied
/// rules list once loaded, for the backend the record names.
pub fn read_live(record: &AppliedRecord, state: &StateDir) -> anyhow::Result<LiveRules> {
    match record
        .rules()
        .map_err(|problem| state.damaged_record(problem))?
    {
        Rules::Nft { text } => {
            exec::require_tools(&["nft"])?;
            let table = nft::live_autofw_table()?;
            // Only worth a scratch namespace when there is a table to compare.
            let expected = match &table {
                Some(_) => nft::canonical(&text),
                None => None,
            };
            Ok(LiveRules::Nft { table, expected })
        }
        Rules::Iptables { v4, v6, ipsets } => {
            exec::require_tools(&iptables::TOOLS)?;
            let expected = iptables::canonical(&v4, &v6, ipsets.as_deref());
            let (expected_v4, expected_v6) = match expected {
                Some((v4, v6)) => (Some(v4), Some(v6)),
                None => (None, None),
            };
            Ok(LiveRules::Iptables(vec![
                FamilyRules {
                    name: "iptables".to_string(),
                    live: iptables::save_family(iptables::V4)?,
                    applied: v4,
                    expected: expected_v4,
                },
                FamilyRules {
                    name: "ip6tables".to_string(),
                    live: iptables::save_family(iptables::V6)?,
                    applied: v6,
                    expected: expected_v6,
                },
            ]))
        }
    }
}
