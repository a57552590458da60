//! Everything that changes the live firewall: running `nft` and
//! `iptables-restore` ([`exec`], the only place that spawns them), the two
//! backends ([`nft`], [`iptables`]), apply with its rollback window
//! ([`apply`], [`window`]), the detached [`watchdog`], and the SSH session
//! detection behind the lockout guard ([`session`]), and loading the
//! persisted rules at boot ([`restore`]).

pub mod answer;
pub mod apply;
pub mod compare;
pub mod exec;
pub mod filter_view;
pub mod iptables;
pub mod nft;
pub mod outcome;
pub mod plan;
pub mod restore;
pub mod session;
pub mod survival;
pub mod watchdog;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::record::{AppliedRecord, Backend, Rules};
use crate::state::StateDir;
use compare::{FamilyRules, LiveRules};

/// Load `rules` into the live firewall, one transaction per family.
/// `saved` is the snapshot taken before, which tells iptables what to keep.
pub fn load(rules: &Rules, saved: Option<&Snapshot>) -> anyhow::Result<()> {
    match rules {
        Rules::Nft { text } => nft::load(text),
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
    /// `nft -s list ruleset` before the apply, when nft is installed: the
    /// reference that a rollback is checked against, byte for byte.
    pub nft_ruleset: Option<String>,
    pub nft: Option<nft::Saved>,
    pub iptables: Option<iptables::Saved>,
}

impl Snapshot {
    /// Save what `backend` will change (and the whole nft ruleset, to check
    /// the rollback against).
    pub fn take(backend: Backend) -> anyhow::Result<Snapshot> {
        let nft_ruleset = if exec::tool_exists("nft") {
            Some(nft::live_ruleset()?)
        } else {
            None
        };
        Ok(Snapshot {
            backend,
            nft_ruleset,
            nft: match backend {
                Backend::Nft => Some(nft::save()?),
                Backend::Iptables => None,
            },
            iptables: match backend {
                Backend::Iptables => Some(iptables::save()?),
                Backend::Nft => None,
            },
        })
    }

    /// Undo the apply: only autofw's own table, chains and policies.
    pub fn restore(&self) -> anyhow::Result<()> {
        if let Some(saved) = &self.nft {
            nft::restore(saved)?;
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
