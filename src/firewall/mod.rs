//! Everything that changes the live firewall: running `nft` and
//! `iptables-restore` ([`exec`], the only place that spawns them), the two
//! backends ([`nft`], [`iptables`]), apply with its rollback window
//! ([`apply`], [`window`]), the detached [`watchdog`], and the SSH session
//! detection behind the lockout guard ([`session`]).

pub mod answers;
pub mod apply;
pub mod exec;
pub mod iptables;
pub mod nft;
pub mod session;
pub mod survival;
pub mod watchdog;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::cli::{Backend, Format};
use crate::propose::Proposal;

/// A rendered ruleset for one backend: what apply loads and persist saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum Rules {
    /// One `nft -f` script that replaces `table inet autofw`.
    Nft { text: String },
    /// `iptables-restore` and `ip6tables-restore --noflush` input, and the
    /// `ipset restore` input of the blocklist sets they match, if any.
    Iptables {
        v4: String,
        v6: String,
        #[serde(default)]
        ipsets: Option<String>,
    },
}

impl Rules {
    pub fn render(proposal: &Proposal, backend: Backend) -> Rules {
        match backend {
            Backend::Nft => Rules::Nft {
                text: proposal.render(Format::Nft),
            },
            Backend::Iptables => Rules::Iptables {
                v4: proposal.render(Format::Iptables),
                v6: proposal.render(Format::Ip6tables),
                ipsets: proposal.ipset_restore(),
            },
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Rules::Nft { .. } => Backend::Nft,
            Rules::Iptables { .. } => Backend::Iptables,
        }
    }

    /// Load into the live firewall, one transaction per family.
    pub fn load(&self, saved: Option<&Snapshot>) -> anyhow::Result<()> {
        match self {
            Rules::Nft { text } => nft::load(text),
            Rules::Iptables { v4, v6, ipsets } => iptables::load(
                v4,
                v6,
                ipsets.as_deref(),
                saved.and_then(|s| s.iptables.as_ref()),
            ),
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

pub fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Nft => "nft",
        Backend::Iptables => "iptables",
    }
}

/// The live firewall as it was before an apply: what rollback puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub backend: String,
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
            backend: backend_name(backend).to_string(),
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
